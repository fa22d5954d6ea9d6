"""The GoDataFeed Order API client: authorization, paging, acknowledgements, status updates.

Retries are urllib3's: one `requests.Session` whose adapter carries a `Retry` subclass. That
subclass makes every repeated attempt pass the shared rate limiter too, and counts retries and
429 answers. The only loop written here is the single re-authorization after a 401.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import takewhile
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

import msgspec
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.collector import collector_paused
from gdf_pipeline.gdf.errors import (
    AuthorizationError,
    BadRequestError,
    GoDataFeedError,
    OrderNotFoundError,
    TransientError,
    TransitionConflictError,
)
from gdf_pipeline.gdf.jsontext import dumps_escaped, dumps_exact
from gdf_pipeline.gdf.ratelimit import SharedLeakyBucket
from gdf_pipeline.gdf.redaction import install_redaction_filter, redact, register_secret

if TYPE_CHECKING:
    from gdf_pipeline.settings import Settings

__all__ = ["ClientStats", "GoDataFeedClient", "ListedOrder", "PacedRetry", "dumps_exact"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Errors that no retry can cure: the configured base URL is unusable.
URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)
# A token is replaced this long before GoDataFeed says it expires, so no call races the expiry.
TOKEN_REFRESH_MARGIN = timedelta(minutes=1)
# A Retry-After longer than this is cut short; the retries that follow still pace themselves.
RETRY_AFTER_MAX_SECONDS = 300
# Pages read past the last reported totalCount before the listing is declared endless.
EXTRA_PAGES_ALLOWED = 5
# Full re-reads of a listing that shrank while it was paged (see list_orders).
LISTING_PASSES_MAX = 3
USER_AGENT = "gdf-pipeline"


@dataclass
class ClientStats:
    """What the client did, for run metadata.

    `calls` counts requests sent, first attempts, retries and authorization calls alike (what
    GoDataFeed's rate limit counts); `throttled` counts 429 answers; `waited_seconds` is time
    spent waiting for the rate limiter and for back-off before sending.
    """

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    reauthorizations: int = 0
    waited_seconds: float = 0.0


class PacedRetry(Retry):
    """urllib3's `Retry`, with every repeated attempt paced by the shared rate limiter.

    Each retry waits first for the back-off (or for a positive `Retry-After`), then for the
    limiter, so a retry is a call like any other in the shared budget. A `Retry-After: 0` or
    absent header falls back to exponential back-off, which here starts at the first retry:
    repeating a throttled call at once would only meet a full bucket again.
    """

    def __init__(
        self,
        *args: Any,
        rate_limiter: SharedLeakyBucket | None = None,
        stats: ClientStats | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limiter = rate_limiter
        self.stats = stats if stats is not None else ClientStats()

    def new(self, **kw: Any) -> PacedRetry:
        kw.setdefault("rate_limiter", self.rate_limiter)
        kw.setdefault("stats", self.stats)
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> PacedRetry:
        if response is not None and response.status == 429:
            self.stats.throttled += 1
            if self.rate_limiter is not None:
                self.rate_limiter.mark_full()
        return super().increment(
            method=method,
            url=url,
            response=response,
            error=error,
            _pool=_pool,
            _stacktrace=_stacktrace,
        )

    def get_backoff_time(self) -> float:
        errors_in_a_row = len(
            list(takewhile(lambda entry: entry.redirect_location is None, reversed(self.history)))
        )
        if errors_in_a_row == 0:
            return 0.0
        backoff = self.backoff_factor * 2 ** (errors_in_a_row - 1)
        if self.backoff_jitter:
            backoff += random.random() * self.backoff_jitter
        return max(0.0, min(self.backoff_max, backoff))

    def get_retry_after(self, response: Any) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            pass
        # Fractional seconds are not HTTP, but cheap to honour; anything else means back-off.
        try:
            seconds = float(response.headers.get(contract.RETRY_AFTER_HEADER, ""))
        except ValueError:
            return None
        if math.isnan(seconds):
            return None
        return max(0.0, min(float(self.retry_after_max), seconds))

    def sleep(self, response: Any = None) -> None:
        started = time.monotonic()
        super().sleep(response)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        self.stats.waited_seconds += time.monotonic() - started
        self.stats.retries += 1
        self.stats.calls += 1


class GoDataFeedClient:
    """Calls the GoDataFeed Order API for one store (one consumer key).

    Not a Dagster resource itself: resources build one per run with `from_settings` and close
    it at the end. Money in every returned order is `Decimal`.
    """

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        *,
        api_version: str = "v1",
        rate_limiter: SharedLeakyBucket | None = None,
        timeout: float = 30.0,
        max_attempts: int = 8,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        page_size: int = 100,
    ) -> None:
        if not consumer_key:
            raise AuthorizationError(
                "GDF_CONSUMER_KEY is not set: copy the store's consumer key from the "
                "GoDataFeed app into it"
            )
        if api_version not in ("v1", "v2"):
            raise ValueError(f"api_version must be v1 or v2, not {api_version!r}")
        if not contract.PAGE_SIZE_MIN <= page_size <= contract.PAGE_SIZE_MAX:
            raise ValueError(
                f"page_size must be {contract.PAGE_SIZE_MIN} to {contract.PAGE_SIZE_MAX}, "
                f"not {page_size}"
            )
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        register_secret(consumer_key)
        install_redaction_filter(log)

        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.stats = ClientStats()
        self._consumer_key = consumer_key
        self._rate_limiter = rate_limiter
        self._timeout = timeout
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        self._authorizations = 0
        self._token_lock = threading.Lock()
        self._session = self._build_session(backoff_factor, backoff_max)

    @classmethod
    def from_settings(cls, settings: Settings) -> GoDataFeedClient:
        """Build a client from `Settings`, paced by the bucket shared under `state_dir`.

        Raises AuthorizationError when GDF_CONSUMER_KEY is not set.
        """
        if not settings.consumer_key:
            raise AuthorizationError(
                "GDF_CONSUMER_KEY is not set: copy the store's consumer key from the "
                "GoDataFeed app into it"
            )
        limiter = SharedLeakyBucket(
            settings.state_dir,
            settings.consumer_key,
            burst=settings.rate_limit_burst,
            per_second=settings.rate_limit_per_second,
        )
        return cls(
            settings.api_url,
            settings.consumer_key,
            api_version=settings.api_version,
            rate_limiter=limiter,
        )

    def __repr__(self) -> str:
        return f"GoDataFeedClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    def __enter__(self) -> GoDataFeedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections. The token is forgotten; the bucket state stays shared."""
        self._token = None
        self._session.close()

    # Orders.

    def list_orders(
        self,
        status: str | None = contract.NEW,
        modified_since: datetime | None = None,
        on_page: Callable[[int, int], None] | None = None,
        keep: Callable[[ListedOrder], Any] | None = None,
    ) -> list:
        """Read every page of the order listing and return its orders, each once.

        Sends `GET orders` with `status` (all statuses when None), `modifiedSince` (must be
        timezone-aware) and page after page of `pageSize` orders. All pages are read before
        anything is returned, so nothing is acknowledged while the listing is being cut.
        Orders are deduplicated by id, keeping the copy with the newest `modifiedAt`, in
        listing order. `on_page(orders_so_far, total_count)` is called after each page.
        Each order is returned parsed, its money Decimal; `keep(listed_order)`, when given,
        turns each `ListedOrder` (the order's text as received) into what is returned instead,
        and a large listing then holds only that while it is read.

        Raises BadRequestError for a rejected parameter, AuthorizationError,
        TransientError, and GoDataFeedError if the paging never ends.
        """
        params: dict[str, str] = {}
        if status is not None:
            params[contract.STATUS_PARAM] = status
        if modified_since is not None:
            params[contract.MODIFIED_SINCE_PARAM] = _iso_datetime(modified_since, "modified_since")

        orders: dict[Any, tuple[datetime, Any]] = {}  # id -> (modifiedAt, the order as kept)
        with collector_paused():
            for number in range(1, LISTING_PASSES_MAX + 1):
                if self._read_listing(params, orders, on_page, keep or parse_listed_order):
                    break
                # The listing changed under the pages: an order that left it moved every later
                # order one place forward, and an order imported within the same second as the
                # newest ones can sort before orders already read. Either can put an unread order
                # onto a page already read; another pass finds it (and the next sync would).
                log.info("order listing changed while paging (pass %d); reading it again", number)
        return [kept for _, kept in orders.values()]

    def get_order(self, order_id: str) -> dict:
        """Send `GET orders/{id}` and return the order.

        Raises OrderNotFoundError (404), AuthorizationError, TransientError.
        """
        return self._call(
            "GET",
            contract.ORDER_PATH.format(order_id=_segment(order_id)),
            action=f"reading order {order_id}",
            order_id=order_id,
        )

    def acknowledge(self, order_id: str, order_number: str) -> dict:
        """Send `POST orders/{id}/acknowledge` with the OMS order number; return the order.

        Safe to repeat with the same number. Raises ValueError for a number outside 1 to 50
        characters, TransitionConflictError (409: acknowledged with another number, shipped
        or cancelled), OrderNotFoundError, BadRequestError, AuthorizationError,
        TransientError.
        """
        if not 1 <= len(order_number) <= contract.SELLER_ORDER_NUMBER_MAX_LENGTH:
            raise ValueError(
                f"order number {order_number!r} for order {order_id} must be 1 to "
                f"{contract.SELLER_ORDER_NUMBER_MAX_LENGTH} characters"
            )
        return self._call(
            "POST",
            contract.ACKNOWLEDGE_PATH.format(order_id=_segment(order_id)),
            body={contract.SELLER_ORDER_NUMBER_FIELD: order_number},
            action=f"acknowledging order {order_id} as {order_number}",
            order_id=order_id,
        )

    def ship(
        self,
        order_id: str,
        *,
        ship_date: datetime,
        carrier: str,
        tracking_number: str = "",
        shipping_method: str | None = None,
    ) -> dict:
        """Send `PUT orders/{id}/status` with status SHIPPED; return the updated order.

        `ship_date` must be timezone-aware; it is sent with its offset, to the second (a date
        without a time would be stored as midnight). `shippingMethod` is left out when None.
        Raises ValueError for a naive `ship_date`, TransitionConflictError (409: not
        acknowledged yet, or shipped differently, or cancelled), BadRequestError (400, e.g. a
        ship date before the order date), OrderNotFoundError, AuthorizationError,
        TransientError.
        """
        body = {
            contract.STATUS_FIELD: contract.SHIPPED,
            contract.SHIP_DATE_FIELD: _iso_datetime(ship_date, "ship_date"),
            contract.CARRIER_FIELD: carrier,
            contract.TRACKING_NUMBER_FIELD: tracking_number,
        }
        if shipping_method is not None:
            body[contract.SHIPPING_METHOD_FIELD] = shipping_method
        return self._call(
            "PUT",
            contract.STATUS_PATH.format(order_id=_segment(order_id)),
            body=body,
            action=f"shipping order {order_id}",
            order_id=order_id,
        )

    def cancel(self, order_id: str) -> dict:
        """Send `PUT orders/{id}/status` with status CANCELLED; return the updated order.

        Safe to repeat. Raises TransitionConflictError (409: already shipped),
        OrderNotFoundError, BadRequestError, AuthorizationError, TransientError.
        """
        return self._call(
            "PUT",
            contract.STATUS_PATH.format(order_id=_segment(order_id)),
            body={contract.STATUS_FIELD: contract.CANCELLED},
            action=f"cancelling order {order_id}",
            order_id=order_id,
        )

    # Paging.

    def _read_listing(
        self,
        params: dict[str, str],
        orders: dict[Any, tuple[datetime, Any]],
        on_page: Callable[[int, int], None] | None,
        keep: Callable[[ListedOrder], Any],
    ) -> bool:
        """Read the listing from page 1 into `orders`; return whether it held still meanwhile.

        It held still when the total never dropped and this pass saw as many distinct orders
        as the last page reported in total.
        """
        page = 1
        seen = 0
        ids_this_pass: set[str] = set()
        previous_total: int | None = None
        shrank = False
        page_size = self.page_size
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gdf-listing") as reader:
            pending = reader.submit(self._fetch_page, params, page)
            while True:
                response = pending.result()
                pending = None
                # While this page is parsed, the next one is already on its way, when the last
                # count says there is one: parsing and waiting for GoDataFeed take turns
                # otherwise. A listing that shrank in between costs one call that is not used.
                if previous_total is not None and page * page_size < previous_total:
                    pending = reader.submit(self._fetch_page, params, page + 1)
                answer = _parse_listing(response, f"listing orders (page {page})")
                batch = answer.orders
                total = _int_or(answer.total_count, seen + len(batch))
                echoed_size = _int_or(answer.page_size, self.page_size)
                page_size = min(self.page_size, echoed_size) if echoed_size > 0 else self.page_size

                _merge_orders(orders, batch, keep)
                new_this_pass = {order.order_id for order in batch}
                new_this_pass -= ids_this_pass
                ids_this_pass |= new_this_pass
                seen += len(batch)
                shrank = shrank or (previous_total is not None and total < previous_total)
                previous_total = total
                if on_page is not None:
                    on_page(len(orders), total)

                if len(batch) < page_size or seen >= total:
                    return not shrank and len(ids_this_pass) >= total
                if not new_this_pass:
                    raise GoDataFeedError(
                        f"listing orders: page {page} repeated only orders already read, so the "
                        "API seems to ignore the page parameter; stopped to avoid an endless loop"
                    )
                if page * page_size >= total + EXTRA_PAGES_ALLOWED * page_size:
                    raise GoDataFeedError(
                        f"listing orders: still full pages at page {page} although totalCount is "
                        f"{total}; stopped to avoid an endless loop"
                    )
                page += 1
                if pending is None:
                    pending = reader.submit(self._fetch_page, params, page)

    def _fetch_page(self, params: dict[str, str], page: int) -> requests.Response:
        """Send `GET orders` for one page of a listing; its answer is parsed by the caller."""
        return self._call(
            "GET",
            contract.ORDERS_PATH,
            params={
                **params,
                contract.PAGE_PARAM: str(page),
                contract.PAGE_SIZE_PARAM: str(self.page_size),
            },
            action=f"listing orders (page {page})",
            parse=_unparsed,
        )

    # Transport.

    def _call(
        self,
        method: str,
        resource: str,
        *,
        action: str,
        params: dict[str, str] | None = None,
        body: dict | None = None,
        order_id: str | None = None,
        parse: Callable[[requests.Response, str], Any] | None = None,
    ) -> Any:
        data = None if body is None else dumps_exact(body).encode("utf-8")
        for attempt in (1, 2):
            token = self._current_token()
            path, headers = self._route(resource, token)
            response = self._send(method, path, params=params, data=data, headers=headers)
            if response.status_code != 401:
                return self._answer(response, action, order_id, parse)
            if attempt == 1:
                # An unknown or expired token: GoDataFeed wants a fresh one, once.
                log.info("GoDataFeed answered 401 while %s; authorizing again", action)
                self._forget_token(token)
        raise AuthorizationError(
            f"GoDataFeed answered 401 while {action}, again with a fresh token: check that "
            "GDF_CONSUMER_KEY is this store's active consumer key",
            status_code=401,
            api_message=_api_message(response),
            order_id=order_id,
        )

    def _route(self, resource: str, token: str) -> tuple[str, dict[str, str]]:
        if self.api_version == "v2":
            return contract.V2_PREFIX + resource, {
                contract.AUTHORIZATION_HEADER: f"{contract.BEARER_SCHEME} {token}"
            }
        return contract.V1_PREFIX.format(token=token) + resource, {}

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request through the limiter and the retrying adapter.

        Retries (5xx, 429, dropped connections, timeouts) happen inside the adapter; the last
        answer is returned whatever its status. Raises TransientError when no answer came.
        """
        # TODO: a connection dropped while the body streams ends as a TransientError instead
        # of a retry, because requests reads the body after urllib3's retry loop has returned;
        # it can go when requests lets urllib3 preload bodies.
        self._pace()
        self.stats.calls += 1
        request_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            request_headers["Content-Type"] = "application/json; charset=utf-8"
        request_headers.update(headers or {})

        failure: GoDataFeedError | None = None
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=request_headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except URL_ERRORS as error:
            failure = GoDataFeedError(
                f"{method} {redact(path)} could not be sent; check GDF_API_URL "
                f"({self.base_url!r}): {type(error).__name__}: {error}"
            )
        except requests.RequestException as error:
            failure = TransientError(
                f"{method} {redact(path)} failed (up to {self.max_attempts} attempts): "
                f"{type(error).__name__}: {error}"
            )
        if failure is not None:
            # Raised outside the except block: the requests error, whose text and request
            # carry the URL with the token, is neither the cause nor the context.
            raise failure

        response.url = redact(response.url)
        if response.request is not None:
            response.request.url = redact(response.request.url)
        return response

    def _pace(self) -> None:
        if self._rate_limiter is not None:
            self.stats.waited_seconds += self._rate_limiter.acquire()

    def _answer(
        self,
        response: requests.Response,
        action: str,
        order_id: str | None,
        parse: Callable[[requests.Response, str], Any] | None = None,
    ) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return (parse or _parse_json)(response, action)

        api_message = _api_message(response)
        detail = f" ({api_message})" if api_message else ""
        where = {"status_code": status, "api_message": api_message, "order_id": order_id}
        if status == 400:
            raise BadRequestError(f"GoDataFeed rejected {action} as invalid (400){detail}", **where)
        if status == 404:
            raise OrderNotFoundError(f"GoDataFeed answered 404 while {action}{detail}", **where)
        if status == 409:
            current = self._order_after_conflict(order_id)
            current_status = None if current is None else current.get(contract.STATUS_FIELD)
            known = f"the order is {current_status}" if current_status else "status unknown"
            raise TransitionConflictError(
                f"GoDataFeed refused {action} (409): {known}{detail}",
                current_status=current_status,
                current_order=current,
                **where,
            )
        if status in RETRY_STATUSES:
            raise TransientError(
                f"GoDataFeed still answered {status} while {action} after {self.max_attempts} "
                f"attempts{detail}",
                **where,
            )
        raise GoDataFeedError(f"GoDataFeed answered {status} while {action}{detail}", **where)

    def _order_after_conflict(self, order_id: str | None) -> dict | None:
        if order_id is None:
            return None
        try:
            return self.get_order(order_id)
        except GoDataFeedError as error:
            # Best effort: the conflict is the error to report, not this fetch.
            log.info("could not read order %s after a 409: %s", order_id, error)
            return None

    # Authorization.

    def _current_token(self) -> str:
        with self._token_lock:
            token = self._token
            expires_at = self._token_expires_at
            if token is not None and (
                expires_at is None or datetime.now(UTC) < expires_at - TOKEN_REFRESH_MARGIN
            ):
                return token
            return self._authorize()

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            # Another thread may already have replaced it.
            if self._token == token:
                self._token = None

    def _authorize(self) -> str:
        response = self._send(
            "GET",
            contract.AUTHORIZATION_PATH,
            params={contract.CONSUMER_KEY_PARAM: self._consumer_key},
        )
        if response.status_code in (401, 403):
            raise AuthorizationError(
                f"GDF_CONSUMER_KEY was rejected by GoDataFeed ({response.status_code}): set it "
                "to the consumer key the GoDataFeed app shows for this store, and check that "
                "the key is active",
                status_code=response.status_code,
                api_message=_api_message(response),
            )
        answer = self._answer(response, "authorizing", None)
        token = answer.get(contract.TOKEN_FIELD) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise GoDataFeedError("GoDataFeed's authorization answer carries no token")
        register_secret(token)

        self._token = token
        self._token_expires_at = _parse_expiry(answer.get(contract.EXPIRES_AT_FIELD))
        self._authorizations += 1
        if self._authorizations > 1:
            self.stats.reauthorizations += 1
        return token

    def _build_session(self, backoff_factor: float, backoff_max: float) -> requests.Session:
        retry = PacedRetry(
            total=self.max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            other=None,
            # Every call in the contract is safe to repeat, POST and PUT included.
            allowed_methods=None,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_factor,
            respect_retry_after_header=True,
            retry_after_max=RETRY_AFTER_MAX_SECONDS,
            # The last 429/5xx answer is handed back and becomes a TransientError with its
            # status and message, instead of urllib3's MaxRetryError with the URL in it.
            raise_on_status=False,
            rate_limiter=self._rate_limiter,
            stats=self.stats,
        )
        adapter = HTTPAdapter(max_retries=retry)
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


def _merge_orders(
    orders: dict[Any, tuple[datetime, Any]],
    batch: list[ListedOrder],
    keep: Callable[[ListedOrder], Any],
) -> None:
    """Add a page's orders to `orders`; a later copy wins only with a newer `modifiedAt`."""
    for listed in batch:
        known = orders.get(listed.order_id)
        if known is None or listed.modified_at > known[0]:
            orders[listed.order_id] = (listed.modified_at, keep(listed))


def _modified_at(value: Any) -> datetime:
    """An order's `modifiedAt`; the oldest possible when it is absent or not a date-time."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _exact_money(value: Any) -> Any:
    """Turn integral money (JPY 1500) into Decimal too, so money is Decimal without exception."""
    is_order = isinstance(value, dict) and contract.ORDER_ID_FIELD in value
    if is_order:
        _money_to_decimal(value, contract.ORDER_MONEY_FIELDS)
        for item in value.get(contract.ITEMS_FIELD) or ():
            if isinstance(item, dict):
                _money_to_decimal(item, contract.ITEM_MONEY_FIELDS)
    return value


def _money_to_decimal(record: dict, fields: tuple[str, ...]) -> None:
    for field in fields:
        amount = record.get(field)
        # The exact type: a bool is an int too, and is no amount. Runs for every amount pulled.
        if type(amount) is int:
            record[field] = Decimal(amount)


def _unparsed(response: requests.Response, action: str) -> requests.Response:
    return response


def _parse_json(response: requests.Response, action: str) -> Any:
    try:
        answer = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise GoDataFeedError(
            f"GoDataFeed answered {response.status_code} while {action}, but not with JSON",
            status_code=response.status_code,
        ) from None
    return _exact_money(answer)


class ListedOrder(NamedTuple):
    """An order of a listing page: its JSON text exactly as it came, and what paging needs.

    The text is what raw storage keeps, digit for digit. Parsing every order into Python
    values was most of a large pull's own work, and raw storage needs none of them.
    """

    order_id: Any  # the order's `id` as listed: null, or of any JSON type but array and object
    modified_at: datetime  # the oldest possible when absent or not a date-time
    json_text: str


class _ListingPage(msgspec.Struct):
    orders: list[msgspec.Raw] | None = msgspec.field(default=None, name=contract.ORDERS_FIELD)
    total_count: Any = msgspec.field(default=None, name=contract.TOTAL_COUNT_FIELD)
    page_size: Any = msgspec.field(default=None, name=contract.PAGE_SIZE_FIELD)


class _PagingFields(msgspec.Struct):
    order_id: Any = msgspec.field(default=None, name=contract.ORDER_ID_FIELD)
    modified_at: Any = msgspec.field(default=None, name=contract.MODIFIED_AT_FIELD)


class _Page(NamedTuple):
    orders: list[ListedOrder]
    total_count: Any
    page_size: Any


_PAGE_DECODER = msgspec.json.Decoder(_ListingPage)
_PAGING_DECODER = msgspec.json.Decoder(_PagingFields)


def parse_listed_order(listed: ListedOrder) -> Any:
    """The order of a listing as parsed JSON, its money Decimal as everywhere in the client."""
    return _exact_money(json.loads(listed.json_text, parse_float=Decimal))


def _parse_listing(response: requests.Response, action: str) -> _Page:
    """A listing page, each order kept as its own text: only `id` and `modifiedAt` are read."""
    try:
        page = _PAGE_DECODER.decode(response.content)
        orders = [_listed_order(bytes(raw).decode()) for raw in page.orders or ()]
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        # Whatever the fast decoder does not take (another encoding, NaN, a page that is not an
        # object, a listing of something else) is left to the standard parse and its errors.
        return _parse_listing_slowly(response, action)
    return _Page(orders, page.total_count, page.page_size)


def _parse_listing_slowly(response: requests.Response, action: str) -> _Page:
    answer = _parse_json(response, action)
    orders = answer.get(contract.ORDERS_FIELD) if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or not isinstance(orders, list | None):
        raise GoDataFeedError(
            f"GoDataFeed answered {response.status_code} while {action}, but not with a page "
            f"of orders (an object whose `{contract.ORDERS_FIELD}` is an array)",
            status_code=response.status_code,
        )
    return _Page(
        # Written again, so not as received, but with every value as the sender wrote it.
        [_listed_order(dumps_escaped(order)) for order in orders or ()],
        answer.get(contract.TOTAL_COUNT_FIELD),
        answer.get(contract.PAGE_SIZE_FIELD),
    )


def _listed_order(text: str) -> ListedOrder:
    try:
        fields = _PAGING_DECODER.decode(text)
        order_id, modified_at = fields.order_id, fields.modified_at
    except (msgspec.DecodeError, msgspec.ValidationError):
        # Not an object, or text the fast decoder refuses (a lone surrogate): parsed in full.
        order = json.loads(text)
        order_id = order.get(contract.ORDER_ID_FIELD) if isinstance(order, dict) else None
        modified_at = order.get(contract.MODIFIED_AT_FIELD) if isinstance(order, dict) else None
    if isinstance(order_id, list | dict):
        order_id = None
    return ListedOrder(order_id, _modified_at(modified_at), text)


def _api_message(response: requests.Response) -> str | None:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None
    message = body.get(contract.MESSAGE_FIELD) if isinstance(body, dict) else None
    return None if message is None else redact(str(message))


def _parse_expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        expires_at = datetime.fromisoformat(str(value))
    except ValueError:
        # An unreadable expiry: treat the token as short-lived, a 401 would renew it anyway.
        return datetime.now(UTC) + TOKEN_REFRESH_MARGIN * 2
    return expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)


def _iso_datetime(value: datetime, name: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, not {value.isoformat()} (naive)")
    return value.isoformat(timespec="seconds")


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _segment(order_id: str) -> str:
    return quote(str(order_id), safe="")
