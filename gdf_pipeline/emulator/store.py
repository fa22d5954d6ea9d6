"""The emulator's state: orders, tokens, status transitions, the rate limit and injected faults.

Everything here sits behind one lock, so each API call reads and changes the state atomically,
as the contract's "each page is cut from the result set as it is at the moment of that request"
needs. The HTTP layer (`server.py`) parses requests and calls one method per call; the methods
here return the response body and raise `ApiError` for every 4xx answer.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import simplejson

from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.contract import (
    ACKNOWLEDGED,
    ACKNOWLEDGED_AT_FIELD,
    CANCELLED,
    CANCELLED_AT_FIELD,
    CARRIER_FIELD,
    EXPIRES_AT_FIELD,
    IMPORTED_AT_FIELD,
    MODIFIED_AT_FIELD,
    NEW,
    ORDER_DATE_FIELD,
    ORDER_ID_FIELD,
    SELLER_ORDER_NUMBER_FIELD,
    SELLER_ORDER_NUMBER_MAX_LENGTH,
    SHIP_DATE_FIELD,
    SHIPMENT_FIELD,
    SHIPPED,
    SHIPPING_METHOD_FIELD,
    STATUS_FIELD,
    TOKEN_FIELD,
    TRACKING_NUMBER_FIELD,
    UPDATE_STATUSES,
)

from .generator import OrderGenerator, format_timestamp, paused_gc

RETRY_AFTER_MODES = ("absent", "zero", "positive", "random")
TOKEN_LIFESPANS_DAYS = (None, 7, 14, 30)
TRANSIENT_STATUSES = (500, 502, 503, 504)

# Extended ISO 8601 only: a date, or a date-time with an offset or Z. Python's fromisoformat
# alone would also take week dates, basic formats and naive times.
_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<minutes>\d{2}:\d{2})(?::(?P<seconds>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2}))?"
)


# Money as exact JSON numbers with all their digits (JPY 1500, USD 5.00, KWD 12.345), UTF-8
# text as is. One encoder for every order: building one per call costs a third of the time.
_ENCODER = simplejson.JSONEncoder(use_decimal=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Faults:
    """Misbehaviour the emulator injects; everything is off by default.

    Rates are fractions of calls (0 to 1), drawn from a random generator seeded with the
    emulator's seed, so the same calls in the same order meet the same faults. A fault always
    strikes before the call takes effect: a failed call has changed nothing and can be repeated.

    - `transient_rate`: calls answered 500, 502, 503 or 504.
    - `drop_rate`: calls whose connection is closed without any response.
    - `latency`: seconds added to every call.
    - `token_expiry_calls`: a token expires after this many calls made with it (0: never).
    - `retry_after`: the `Retry-After` header on 429 and injected 503 answers: "absent",
      "zero", "positive" (the whole seconds until the bucket has room, at least 1) or "random"
      (one of the three per answer).
    - `import_during_paging`: when a list call asks for page 2 or later, this many new orders
      are imported just before the page is cut.
    - `upstream_cancel_rate`: list calls after which the marketplace cancels one random NEW or
      ACKNOWLEDGED order.
    """

    transient_rate: float = 0.0
    drop_rate: float = 0.0
    latency: float = 0.0
    token_expiry_calls: int = 0
    retry_after: str = "absent"
    import_during_paging: int = 0
    upstream_cancel_rate: float = 0.0

    def __post_init__(self):
        for name in ("transient_rate", "drop_rate", "upstream_cancel_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1")
        if self.latency < 0:
            raise ValueError("Faults.latency must not be negative")
        if self.token_expiry_calls < 0 or self.import_during_paging < 0:
            raise ValueError("Faults.token_expiry_calls and import_during_paging must be >= 0")
        if self.retry_after not in RETRY_AFTER_MODES:
            raise ValueError(f"Faults.retry_after must be one of {', '.join(RETRY_AFTER_MODES)}")


@dataclass
class Stats:
    """What the emulator has seen; `Emulator.stats` hands out copies.

    `requests` counts every call received; `responses` the answers by status code (429s, which
    are also in `rate_limited`, and injected 5xx, also in `transient`, included); `dropped` the
    calls closed without an answer. The other counts are of calls that got past the rate limit
    and the faults: `authorizations`, `list_calls`, and per order id `acknowledge_calls` and
    `status_update_calls`, whatever their answer.
    """

    requests: int = 0
    responses: Counter = field(default_factory=Counter)
    rate_limited: int = 0
    transient: int = 0
    dropped: int = 0
    authorizations: int = 0
    list_calls: int = 0
    acknowledge_calls: Counter = field(default_factory=Counter)
    status_update_calls: Counter = field(default_factory=Counter)

    def copy(self) -> Stats:
        return replace(
            self,
            responses=Counter(self.responses),
            acknowledge_calls=Counter(self.acknowledge_calls),
            status_update_calls=Counter(self.status_update_calls),
        )


class ApiError(Exception):
    """A 4xx answer: its status code and the `message` of its JSON body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Admission:
    """How the emulator answers a call before looking at it.

    `status` None means: go on and handle the call. Otherwise answer `status` at once (429 or
    an injected 5xx) with `retry_after` as the header value when not None, or, when `drop` is
    set, close the connection without answering.
    """

    status: int | None = None
    retry_after: str | None = None
    drop: bool = False


class LeakyBucket:
    """The GoDataFeed rate limit: `capacity` calls, draining `rate` calls per second."""

    def __init__(self, capacity: int, rate: float):
        self.capacity = capacity
        self.rate = rate
        self.level = 0.0
        self._last = _monotonic()

    def enter(self) -> float | None:
        """Counts a call in; or, when the bucket is full, returns the seconds until it has room.

        A call that finds the bucket full does not enter it, so hammering a full bucket does
        not keep it full.
        """
        now = _monotonic()
        self.level = max(0.0, self.level - (now - self._last) * self.rate)
        self._last = now
        if self.level + 1.0 > self.capacity + 1e-9:
            return (self.level + 1.0 - self.capacity) / self.rate
        self.level += 1.0
        return None


@dataclass
class _Token:
    expires_at: datetime | None
    calls: int = 0
    expired: bool = False


@dataclass(slots=True)
class _Record:
    order: dict
    key: tuple[str, str]
    order_date: datetime
    modified_at: datetime
    body: str | None = None


def parse_date_time(text: object, *, date_only_ok: bool) -> datetime | None:
    """A timezone-aware datetime from extended ISO 8601 text, or None when it is not one.

    A date without a time is midnight UTC when `date_only_ok`, else rejected.
    """
    match = _DATE_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match["minutes"] is None and not date_only_ok):
        return None
    if match["minutes"] is None:
        text = f"{match['date']}T00:00:00+00:00"
    else:
        # fromisoformat takes at most microseconds: further digits are dropped.
        fraction = f".{match['fraction'][:6]:0<6}" if match["fraction"] else ""
        offset = "+00:00" if match["offset"] == "Z" else match["offset"]
        text = f"{match['date']}T{match['minutes']}:{match['seconds'] or '00'}{fraction}{offset}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _format_ship_date(moment: datetime) -> str:
    if moment.utcoffset() == timedelta(0):
        return moment.isoformat().replace("+00:00", "Z")
    return moment.isoformat()


REMOVE = object()


def _apply(order: dict, change: dict) -> None:
    """Sets each field of `change` on the order; the value REMOVE deletes the field."""
    for field_name, value in change.items():
        if value is REMOVE:
            order.pop(field_name, None)
        else:
            order[field_name] = _copy(value)


def _copy(value):
    """A deep copy of JSON-shaped data (dicts, lists, immutable leaves); faster than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Store:
    """All emulator state behind one lock; see the module docstring."""

    def __init__(
        self,
        *,
        orders: int,
        seed: int,
        rate_burst: int,
        rate_per_second: float,
        token_lifespan_days: int | None,
        faults: Faults,
        consumer_key: str | None,
    ):
        if token_lifespan_days not in TOKEN_LIFESPANS_DAYS:
            raise ValueError("token_lifespan_days must be None (never expires), 7, 14 or 30")
        if rate_burst < 0:
            raise ValueError("rate_burst must be >= 0 (0 turns the rate limit off)")
        if rate_burst and rate_per_second <= 0:
            raise ValueError("rate_per_second must be above 0")
        if orders < 0:
            raise ValueError("orders must be >= 0")
        self._lock = threading.Lock()
        self.seed = seed
        self.faults = faults
        self.token_lifespan_days = token_lifespan_days
        self.consumer_key = consumer_key or _consumer_key(seed)
        # 0 turns the limit off: tests that are not about the rate limit do not want to wait.
        self._bucket = LeakyBucket(rate_burst, rate_per_second) if rate_burst else None
        # Separate generators, so that turning a fault on does not change the orders or tokens.
        self._fault_rng = random.Random(f"gdf-emulator-faults:{seed}")
        self._token_rng = random.Random(f"gdf-emulator-tokens:{seed}")
        self._generator = OrderGenerator(seed)
        self.store_id = self._generator.store_id
        self._tokens: dict[str, _Token] = {}
        self._records: dict[str, _Record] = {}
        # Sort keys (importedAt, id) of every order, and of the orders in each status.
        self._index: dict[str | None, list[tuple[str, str]]] = {
            status: [] for status in (None, *contract.ORDER_STATUSES)
        }
        self._version = 0
        self._filtered: dict[tuple[str | None, datetime], tuple[int, list]] = {}
        self.stats = Stats()
        with paused_gc():
            self._add(self._generator.history(orders, _now()), bulk=True)

    # Calls, as the HTTP layer makes them.

    def admit(self) -> Admission:
        """Counts a call and decides whether it is throttled, failed or dropped up front."""
        with self._lock:
            self.stats.requests += 1
            if self._bucket is not None:
                wait = self._bucket.enter()
                if wait is not None:
                    return Admission(429, self._retry_after(wait))
            # The bucket counts faulted calls too: GoDataFeed's gateway counts every call it
            # receives, whatever happens behind it.
            faults = self.faults
            if faults.drop_rate and self._fault_rng.random() < faults.drop_rate:
                self.stats.dropped += 1
                return Admission(drop=True)
            if faults.transient_rate and self._fault_rng.random() < faults.transient_rate:
                status = self._fault_rng.choice(TRANSIENT_STATUSES)
                self.stats.transient += 1
                return Admission(status, self._retry_after(1.0) if status == 503 else None)
            return Admission()

    def record_response(self, status: int) -> None:
        with self._lock:
            self.stats.responses[status] += 1
            if status == 429:
                self.stats.rate_limited += 1

    def authorize(self, consumer_key: str | None) -> dict:
        with self._lock:
            self.stats.authorizations += 1
            if consumer_key != self.consumer_key:
                raise ApiError(401, "Unknown or deactivated consumer key.")
            token = f"{self._token_rng.getrandbits(128):032x}"
            while token in self._tokens:
                token = f"{self._token_rng.getrandbits(128):032x}"
            expires_at = None
            if self.token_lifespan_days is not None:
                expires_at = _now() + timedelta(days=self.token_lifespan_days)
            self._tokens[token] = _Token(expires_at)
            return {
                TOKEN_FIELD: token,
                EXPIRES_AT_FIELD: None if expires_at is None else format_timestamp(expires_at),
            }

    def check_token(self, token: str | None) -> None:
        """Raises a 401 unless the token is known and unexpired; counts the call against it."""
        with self._lock:
            record = self._tokens.get(token) if token else None
            if record is None:
                raise ApiError(401, "Unknown access token; ask /v1/authorization for a new one.")
            record.calls += 1
            limit = self.faults.token_expiry_calls
            if limit and record.calls > limit:
                record.expired = True
            if record.expires_at is not None and record.expires_at <= _now():
                record.expired = True
            if record.expired:
                raise ApiError(401, "The access token has expired; ask for a new one.")

    def list_orders(
        self,
        status: str | None,
        modified_since: datetime | None,
        page: int,
        page_size: int,
    ) -> str:
        with self._lock:
            self.stats.list_calls += 1
            if page >= 2 and self.faults.import_during_paging:
                self._import(self.faults.import_during_paging)
            keys = self._matching(status, modified_since)
            start = (page - 1) * page_size
            chunk = keys[start : start + page_size]
            # The page is spliced from each order's cached JSON rather than re-encoded.
            envelope = simplejson.dumps(
                {
                    contract.PAGE_FIELD: page,
                    contract.PAGE_SIZE_FIELD: page_size,
                    contract.TOTAL_COUNT_FIELD: len(keys),
                    contract.ORDERS_FIELD: [],
                },
                separators=(",", ":"),
            )
            orders = ",".join(self._body(self._records[key[1]]) for key in chunk)
            body = f"{envelope[:-3]}[{orders}]}}"
            rate = self.faults.upstream_cancel_rate
            if rate and self._fault_rng.random() < rate:
                self._cancel_random_open_order()
            return body

    def get_order(self, order_id: str) -> str:
        with self._lock:
            return self._body(self._record(order_id))

    def acknowledge(self, order_id: str, body: object) -> str:
        with self._lock:
            record = self._record(order_id)
            self.stats.acknowledge_calls[order_id] += 1
            number = body.get(SELLER_ORDER_NUMBER_FIELD) if isinstance(body, dict) else None
            if not isinstance(number, str) or not number:
                raise ApiError(400, f"{SELLER_ORDER_NUMBER_FIELD} is required.")
            if len(number) > SELLER_ORDER_NUMBER_MAX_LENGTH:
                raise ApiError(
                    400,
                    f"{SELLER_ORDER_NUMBER_FIELD} must be at most "
                    f"{SELLER_ORDER_NUMBER_MAX_LENGTH} characters.",
                )
            order = record.order
            current = order[STATUS_FIELD]
            if current == ACKNOWLEDGED and order[SELLER_ORDER_NUMBER_FIELD] == number:
                return self._body(record)
            if current != NEW:
                raise ApiError(409, _conflict(order, "only a NEW order can be acknowledged"))
            now = format_timestamp(_now())
            order[SELLER_ORDER_NUMBER_FIELD] = number
            order[ACKNOWLEDGED_AT_FIELD] = now
            self._change(record, ACKNOWLEDGED, now)
            return self._body(record)

    def update_status(self, order_id: str, body: object) -> str:
        with self._lock:
            record = self._record(order_id)
            self.stats.status_update_calls[order_id] += 1
            if not isinstance(body, dict):
                raise ApiError(400, "The body must be a JSON object with a status.")
            status = body.get(STATUS_FIELD)
            if status not in UPDATE_STATUSES:
                raise ApiError(400, f"{STATUS_FIELD} must be one of {', '.join(UPDATE_STATUSES)}.")
            order = record.order
            current = order[STATUS_FIELD]
            if status == CANCELLED:
                # A `reason` is ignored: cancellation reasons are fixed inside GoDataFeed.
                if current == CANCELLED:
                    return self._body(record)
                if current == SHIPPED:
                    raise ApiError(409, _conflict(order, "a SHIPPED order is final"))
                self._cancel(record)
                return self._body(record)

            shipment = self._shipment(body, record)
            if current == SHIPPED:
                if _same_shipment(order[SHIPMENT_FIELD], shipment):
                    return self._body(record)
                raise ApiError(409, _conflict(order, "a SHIPPED order is final"))
            if current != ACKNOWLEDGED:
                raise ApiError(409, _conflict(order, "only an ACKNOWLEDGED order can ship"))
            order[SHIPMENT_FIELD] = shipment
            self._change(record, SHIPPED, format_timestamp(_now()))
            return self._body(record)

    # Helpers for tests and benchmarks, through `Emulator`.

    def order(self, order_id: str) -> dict:
        with self._lock:
            record = self._records.get(order_id)
            if record is None:
                raise KeyError(order_id)
            return _copy(record.order)

    def all_orders(self, status: str | None = None) -> list[dict]:
        with self._lock:
            return [_copy(self._records[k[1]].order) for k in self._index[status]]

    def count(self, status: str | None = None) -> int:
        with self._lock:
            return len(self._index[status])

    def import_orders(self, count: int) -> list[str]:
        with self._lock:
            return self._import(count)

    def import_malformed(self, changes: list[dict]) -> list[str]:
        """Imports one NEW order per dict of changes, each change applied to its top level."""
        with self._lock:
            generated = self._generator.batch(len(changes), _now())
            self._add(generated, bulk=False)
            # The ids are taken before the changes: a change may remove or spoil the id, and
            # the emulator still files the order under its generated one.
            ids = [order[ORDER_ID_FIELD] for order, _, _ in generated]
            for (order, _, _), change in zip(generated, changes, strict=True):
                _apply(order, change)
            return ids

    def amend_order(self, order_id: str, change: dict) -> dict:
        """Applies changes to an order's top level, as a seller's fix at the marketplace would."""
        with self._lock:
            record = self._record(order_id)
            _apply(record.order, change)
            record.body = None
            self._version += 1
            return _copy(record.order)

    def cancel_upstream(self, order_id: str) -> dict:
        with self._lock:
            record = self._records.get(order_id)
            if record is None:
                raise KeyError(order_id)
            current = record.order[STATUS_FIELD]
            if current == SHIPPED:
                raise ValueError(f"order {order_id} is SHIPPED; a shipped order is final")
            if current != CANCELLED:
                self._cancel(record)
            return _copy(record.order)

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expired = True

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults

    def snapshot_stats(self) -> Stats:
        with self._lock:
            return self.stats.copy()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    # Internals; the caller holds the lock.

    def _record(self, order_id: str) -> _Record:
        record = self._records.get(order_id)
        if record is None:
            raise ApiError(404, f"Order {order_id} not found.")
        return record

    def _import(self, count: int) -> list[str]:
        generated = self._generator.batch(count, _now())
        self._add(generated, bulk=False)
        return [order[ORDER_ID_FIELD] for order, _, _ in generated]

    def _add(self, generated: list[tuple[dict, datetime, datetime]], *, bulk: bool) -> None:
        everything, new = self._index[None], self._index[NEW]
        for order, order_date, imported_at in generated:
            key = (order[IMPORTED_AT_FIELD], order[ORDER_ID_FIELD])
            self._records[key[1]] = _Record(order, key, order_date, imported_at)
            if bulk:
                everything.append(key)
                new.append(key)
            else:
                insort(everything, key)
                insort(new, key)
        if bulk:
            everything.sort()
            new.sort()
        self._version += 1

    def _matching(self, status: str | None, modified_since: datetime | None) -> list:
        """Sort keys of the orders a listing returns, as the state is right now."""
        keys = self._index[status]
        if modified_since is None:
            return keys
        # Filtering is linear, so the result is kept until the next change: paging through a
        # large unchanged listing then costs one filter, not one per page.
        cached = self._filtered.get((status, modified_since))
        if cached is not None and cached[0] == self._version:
            return cached[1]
        records = self._records
        matching = [k for k in keys if records[k[1]].modified_at >= modified_since]
        if len(self._filtered) > 16:
            self._filtered.clear()
        self._filtered[(status, modified_since)] = (self._version, matching)
        return matching

    def _change(self, record: _Record, status: str, now: str) -> None:
        """Moves an order to `status` with `modifiedAt` now, keeping the indexes in step."""
        order = record.order
        previous = order[STATUS_FIELD]
        if previous != status:
            old = self._index[previous]
            del old[bisect_left(old, record.key)]
            insort(self._index[status], record.key)
        order[STATUS_FIELD] = status
        order[MODIFIED_AT_FIELD] = now
        record.modified_at = datetime.fromisoformat(now)
        record.body = None
        self._version += 1

    def _cancel(self, record: _Record) -> None:
        now = format_timestamp(_now())
        record.order[CANCELLED_AT_FIELD] = now
        self._change(record, CANCELLED, now)

    def _cancel_random_open_order(self) -> None:
        new, acknowledged = self._index[NEW], self._index[ACKNOWLEDGED]
        count = len(new) + len(acknowledged)
        if count:
            pick = self._fault_rng.randrange(count)
            key = new[pick] if pick < len(new) else acknowledged[pick - len(new)]
            self._cancel(self._records[key[1]])

    def _shipment(self, body: dict, record: _Record) -> dict:
        ship_date = parse_date_time(body.get(SHIP_DATE_FIELD), date_only_ok=True)
        if ship_date is None:
            raise ApiError(
                400,
                f"{SHIP_DATE_FIELD} is required: an ISO 8601 date and time with an offset or Z.",
            )
        if ship_date < record.order_date:
            raise ApiError(
                400,
                f"{SHIP_DATE_FIELD} {_format_ship_date(ship_date)} is before the order's "
                f"{ORDER_DATE_FIELD}.",
            )
        carrier = body.get(CARRIER_FIELD)
        if not isinstance(carrier, str) or not carrier.strip():
            raise ApiError(400, f"{CARRIER_FIELD} is required.")
        tracking_number = body.get(TRACKING_NUMBER_FIELD)
        if not isinstance(tracking_number, str):
            raise ApiError(400, f"{TRACKING_NUMBER_FIELD} is required (it may be empty).")
        shipping_method = body.get(SHIPPING_METHOD_FIELD)
        if shipping_method is not None and not isinstance(shipping_method, str):
            raise ApiError(400, f"{SHIPPING_METHOD_FIELD} must be a string.")
        return {
            CARRIER_FIELD: carrier,
            SHIPPING_METHOD_FIELD: shipping_method,
            TRACKING_NUMBER_FIELD: tracking_number,
            SHIP_DATE_FIELD: _format_ship_date(ship_date),
        }

    def _body(self, record: _Record) -> str:
        if record.body is None:
            record.body = _ENCODER.encode(record.order)
        return record.body

    def _retry_after(self, wait: float) -> str | None:
        mode = self.faults.retry_after
        if mode == "random":
            mode = self._fault_rng.choice(("absent", "zero", "positive"))
        if mode == "zero":
            return "0"
        if mode == "positive":
            return str(max(1, math.ceil(wait)))
        return None


def _same_shipment(stored: dict, new: dict) -> bool:
    """A repeated ship update: same fields, and the same instant however its offset is written."""
    for name in (CARRIER_FIELD, SHIPPING_METHOD_FIELD, TRACKING_NUMBER_FIELD):
        if stored[name] != new[name]:
            return False
    stored_date = datetime.fromisoformat(stored[SHIP_DATE_FIELD])
    return stored_date == datetime.fromisoformat(new[SHIP_DATE_FIELD])


def _conflict(order: dict, rule: str) -> str:
    return f"Order {order[ORDER_ID_FIELD]} is {order[STATUS_FIELD]}: {rule}."


def _consumer_key(seed: int) -> str:
    """A key shaped like the GUIDs GoDataFeed shows in its app, derived from the seed."""
    bits = random.Random(f"gdf-emulator-consumer-key:{seed}").getrandbits(128)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}"


def _now() -> datetime:
    """The wall clock for timestamps, in whole seconds; tests replace it to travel in time."""
    return datetime.now(UTC).replace(microsecond=0)


def _monotonic() -> float:
    """The rate limit's clock; tests replace it to drain the bucket without sleeping."""
    return time.monotonic()
