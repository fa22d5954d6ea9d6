"""The GoDataFeed client over real HTTP on loopback.

A route-table fake scripts exact answer sequences (429 with each kind of Retry-After, 5xx,
dropped connections, stalls, 401s, paging quirks) and records when each request arrived, so
back-off and pacing are asserted from the server's side. The emulator then checks the client
end to end: faults, imports during paging, exact money, two processes on one consumer key.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.client import GoDataFeedClient, dumps_exact
from gdf_pipeline.gdf.errors import (
    AuthorizationError,
    BadRequestError,
    GoDataFeedError,
    OrderNotFoundError,
    TransientError,
    TransitionConflictError,
)
from gdf_pipeline.gdf.ratelimit import SharedLeakyBucket
from gdf_pipeline.settings import Settings

TOKEN = "0123456789abcdef0123456789abcdef"
SECOND_TOKEN = "fedcba9876543210fedcba9876543210"
# Characters that a query string percent-encodes, so the encoded form must be redacted too.
CONSUMER_KEY = "ck/test+Zq9=secret key"
BACKOFF = 0.05


# The route-table fake.


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Raw text sent as-is instead of JSON, for exact-number answers.
    text: str | None = None


DROP = "drop"  # close the connection without answering
STALL = "stall"  # answer only after the client has given up waiting
TRUNCATE = "truncate"  # send the status line and half the promised body, then close


@dataclass
class Seen:
    method: str
    path: str
    resource: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


class FakeApi:
    """A scripted GoDataFeed: tokens, a route table, and a log of every request received."""

    def __init__(self) -> None:
        self.valid_tokens = {TOKEN}
        self.issued_tokens = [TOKEN]
        self.expires_at: str | None = None
        self.auth_replies: list[Reply] = []
        self.routes: list[tuple[str, re.Pattern[str], list[Any]]] = []
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, pattern: str, *replies: Any) -> None:
        """Answer requests to `pattern` with `replies` in turn; the last one repeats."""
        self.routes.append((method, re.compile(pattern + "$"), list(replies)))

    def requests_to(self, pattern: str) -> list[Seen]:
        return [s for s in self.seen if re.fullmatch(pattern, s.resource)]

    def _answer(self, seen: Seen) -> Any:
        with self._lock:
            self.seen.append(seen)
            if seen.path == contract.AUTHORIZATION_PATH:
                return self._authorize(seen)
            if not self._authorized(seen):
                return Reply(401, {"message": "unknown or expired token"})
            for method, pattern, replies in self.routes:
                if method == seen.method and pattern.fullmatch(seen.resource):
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply(404, {"message": "no such route"})

    def _authorize(self, seen: Seen) -> Any:
        if self.auth_replies:
            return self.auth_replies.pop(0)
        if seen.query.get(contract.CONSUMER_KEY_PARAM) != CONSUMER_KEY:
            return Reply(401, {"message": "unknown consumer key"})
        token = self.issued_tokens.pop(0) if len(self.issued_tokens) > 1 else self.issued_tokens[0]
        self.valid_tokens.add(token)
        return Reply(200, {"token": token, "expiresAt": self.expires_at})

    def _authorized(self, seen: Seen) -> bool:
        if seen.path.startswith(contract.V2_PREFIX + "/"):
            header = seen.headers.get("authorization", "")
            return header.removeprefix("Bearer ") in self.valid_tokens
        token = seen.path.split("/")[2]
        return token in self.valid_tokens

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                path = parts.path
                if path.startswith(contract.V2_PREFIX + "/"):
                    resource = path[len(contract.V2_PREFIX) :]
                elif path == contract.AUTHORIZATION_PATH:
                    resource = path
                else:
                    resource = "/" + "/".join(path.split("/")[3:])
                seen = Seen(
                    method=self.command,
                    path=path,
                    resource=resource,
                    query={k: v[0] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                    at=time.monotonic(),
                )
                reply = fake._answer(seen)
                if reply == DROP:
                    self.close_connection = True
                    return
                if reply == STALL:
                    fake.release.wait(5)
                    self.close_connection = True
                    return
                if reply == TRUNCATE:
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b'{"id": "o1", ')
                    self.close_connection = True
                    return
                if callable(reply):
                    reply = reply(seen)
                data = (reply.text if reply.text is not None else json.dumps(reply.body)).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        return Handler


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture
def make_client(fake: FakeApi) -> Iterator[Callable[..., GoDataFeedClient]]:
    clients: list[GoDataFeedClient] = []

    def make(**options: Any) -> GoDataFeedClient:
        options = {"backoff_factor": BACKOFF, "timeout": 5.0, **options}
        client = GoDataFeedClient(options.pop("base_url", fake.url), CONSUMER_KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def order(order_id: str, modified_at: str = "2026-12-03T09:30:04Z", **fields: Any) -> dict:
    return {
        "id": order_id,
        "status": contract.NEW,
        "currency": "USD",
        "importedAt": "2026-12-03T09:30:04Z",
        "modifiedAt": modified_at,
        "orderTotal": 10.5,
        "items": [{"itemId": "1", "quantity": 1, "unitPrice": 10.5}],
        **fields,
    }


def gaps(seen: list[Seen]) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(seen, seen[1:], strict=False)]


# Retries and back-off.


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(None, id="absent"),
        pytest.param("0", id="zero"),
    ],
)
def test_429_without_a_positive_retry_after_backs_off_exponentially(fake, make_client, retry_after):
    headers = {} if retry_after is None else {contract.RETRY_AFTER_HEADER: retry_after}
    throttled = Reply(429, {"message": "bucket full"}, headers)
    fake.route("GET", "/orders/o1", throttled, throttled, throttled, Reply(200, order("o1")))
    client = make_client()

    assert client.get_order("o1")["id"] == "o1"

    attempts = fake.requests_to("/orders/o1")
    assert len(attempts) == 4
    # Each wait at least doubles from the back-off factor: no immediate repeat, no storm.
    for number, gap in enumerate(gaps(attempts)):
        assert gap >= BACKOFF * 2**number
    assert client.stats.throttled == 3
    assert client.stats.retries == 3
    assert client.stats.calls == 5  # the authorization call and four attempts


def test_429_with_a_positive_retry_after_waits_that_long(fake, make_client):
    throttled = Reply(429, {"message": "bucket full"}, {contract.RETRY_AFTER_HEADER: "1"})
    fake.route("GET", "/orders/o1", throttled, Reply(200, order("o1")))
    client = make_client(backoff_factor=0.01)

    client.get_order("o1")

    (gap,) = gaps(fake.requests_to("/orders/o1"))
    assert gap >= 1.0
    assert client.stats.throttled == 1


def test_unreadable_retry_after_falls_back_to_backoff(fake, make_client):
    odd = Reply(429, {"message": "bucket full"}, {contract.RETRY_AFTER_HEADER: "soon"})
    fake.route("GET", "/orders/o1", odd, Reply(200, order("o1")))
    client = make_client()

    assert client.get_order("o1")["id"] == "o1"
    (gap,) = gaps(fake.requests_to("/orders/o1"))
    assert gap >= BACKOFF


def test_every_attempt_passes_the_shared_bucket(fake, make_client, tmp_path):
    class CountingBucket(SharedLeakyBucket):
        acquired = 0
        marked_full = 0

        def acquire(self) -> float:
            CountingBucket.acquired += 1
            return super().acquire()

        def mark_full(self) -> None:
            CountingBucket.marked_full += 1
            super().mark_full()

    bucket = CountingBucket(tmp_path, CONSUMER_KEY, burst=5, per_second=50)
    fake.route(
        "POST",
        "/orders/o1/acknowledge",
        Reply(503, {"message": "busy"}),
        Reply(429, {"message": "bucket full"}, {contract.RETRY_AFTER_HEADER: "0"}),
        DROP,
        Reply(200, order("o1", status=contract.ACKNOWLEDGED)),
    )
    client = make_client(rate_limiter=bucket, backoff_factor=0.01)

    client.acknowledge("o1", "SO-1")

    assert CountingBucket.acquired == len(fake.seen) == 5
    assert CountingBucket.marked_full == 1
    assert client.stats.calls == 5
    assert client.stats.retries == 3
    assert client.stats.throttled == 1


def test_server_errors_are_retried_with_the_same_body(fake, make_client):
    fake.route(
        "POST",
        "/orders/o1/acknowledge",
        Reply(500, {"message": "oops"}),
        Reply(502, {"message": "bad gateway"}),
        Reply(503, {"message": "unavailable"}),
        Reply(504, {"message": "timeout"}),
        Reply(200, order("o1", status=contract.ACKNOWLEDGED, sellerOrderNumber="SO-7")),
    )
    client = make_client(backoff_factor=0.001)

    answer = client.acknowledge("o1", "SO-7")

    assert answer["sellerOrderNumber"] == "SO-7"
    attempts = fake.requests_to("/orders/o1/acknowledge")
    assert [a.body for a in attempts] == [{contract.SELLER_ORDER_NUMBER_FIELD: "SO-7"}] * 5


def test_retries_exhausted_raise_transient_error(fake, make_client):
    fake.route("GET", "/orders/o1", Reply(503, {"message": "down for maintenance"}))
    client = make_client(max_attempts=3, backoff_factor=0.001)

    with pytest.raises(TransientError) as caught:
        client.get_order("o1")

    assert caught.value.status_code == 503
    assert caught.value.api_message == "down for maintenance"
    assert caught.value.order_id == "o1"
    assert len(fake.requests_to("/orders/o1")) == 3


def test_dropped_connections_are_retried(fake, make_client):
    shipped = order("o1", status=contract.SHIPPED)
    fake.route("PUT", "/orders/o1/status", DROP, DROP, Reply(200, shipped))
    client = make_client(backoff_factor=0.001)

    answer = client.ship("o1", ship_date=datetime(2026, 12, 3, 14, 5, tzinfo=UTC), carrier="UPS")

    assert answer["status"] == contract.SHIPPED
    assert len(fake.requests_to("/orders/o1/status")) == 3
    assert client.stats.retries == 2


def test_a_stalled_answer_times_out_and_is_retried(fake, make_client):
    fake.route("GET", "/orders/o1", STALL, Reply(200, order("o1")))
    client = make_client(timeout=0.3, backoff_factor=0.001)

    assert client.get_order("o1")["id"] == "o1"
    assert len(fake.requests_to("/orders/o1")) == 2


def test_a_body_cut_short_is_a_transient_error(fake, make_client):
    fake.route("GET", "/orders/o1", TRUNCATE, Reply(200, order("o1")))
    client = make_client()

    with pytest.raises(TransientError):
        client.get_order("o1")
    assert client.get_order("o1")["id"] == "o1"


def test_unreachable_api_raises_transient_error_without_secrets(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=2)

    with pytest.raises(TransientError) as caught:
        client.get_order("o1")

    text = "".join(traceback.format_exception(caught.value))
    assert "127.0.0.1" in text
    assert_no_secrets(text, repr(caught.value), str(caught.value.args))
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


# Authorization.


def test_a_401_reauthorizes_once_and_repeats_the_call(fake, make_client):
    fake.issued_tokens = [TOKEN, SECOND_TOKEN]
    fake.route("GET", "/orders/o1", Reply(200, order("o1")))
    client = make_client()
    client.get_order("o1")
    fake.valid_tokens = set()  # the first token expires

    assert client.get_order("o1")["id"] == "o1"

    assert len(fake.requests_to(contract.AUTHORIZATION_PATH)) == 2
    assert fake.seen[-1].path.split("/")[2] == SECOND_TOKEN
    assert client.stats.reauthorizations == 1


def test_a_second_401_is_an_authorization_error_naming_the_setting(fake, make_client):
    fake.route("GET", "/orders/o1", Reply(401, {"message": "token rejected"}))
    client = make_client()

    with pytest.raises(AuthorizationError) as caught:
        client.get_order("o1")

    assert "GDF_CONSUMER_KEY" in str(caught.value)
    assert_no_secrets(str(caught.value), repr(caught.value))
    assert len(fake.requests_to(contract.AUTHORIZATION_PATH)) == 2
    assert len(fake.requests_to("/orders/o1")) == 2


def test_a_rejected_consumer_key_is_an_authorization_error(fake, make_client):
    fake.auth_replies = [Reply(401, {"message": "unknown consumer key"})]
    client = make_client()

    with pytest.raises(AuthorizationError, match="GDF_CONSUMER_KEY was rejected") as caught:
        client.list_orders()

    assert caught.value.status_code == 401
    assert_no_secrets(str(caught.value), repr(caught.value))
    assert len(fake.seen) == 1


def test_a_missing_consumer_key_is_an_authorization_error():
    with pytest.raises(AuthorizationError, match="GDF_CONSUMER_KEY"):
        GoDataFeedClient("http://127.0.0.1:9", "")


@pytest.mark.parametrize(
    ("expires_in", "authorizations"),
    [
        pytest.param(None, 1, id="never-expires"),
        pytest.param(timedelta(days=7), 1, id="expires-later"),
        pytest.param(timedelta(seconds=30), 3, id="expires-within-a-minute"),
    ],
)
def test_the_token_is_cached_until_shortly_before_it_expires(
    fake, make_client, expires_in, authorizations
):
    if expires_in is not None:
        fake.expires_at = (datetime.now(UTC) + expires_in).isoformat().replace("+00:00", "Z")
    fake.route("GET", "/orders/o1", Reply(200, order("o1")))
    client = make_client()

    for _ in range(3):
        client.get_order("o1")

    assert len(fake.requests_to(contract.AUTHORIZATION_PATH)) == authorizations


def test_from_settings_paces_through_the_bucket_under_the_state_dir(fake, tmp_path):
    fake.route("GET", "/orders/o1", Reply(200, order("o1")))
    settings = Settings(api_url=fake.url, consumer_key=CONSUMER_KEY, data_dir=tmp_path)

    with GoDataFeedClient.from_settings(settings) as client:
        client.get_order("o1")

    (state_file,) = settings.state_dir.iterdir()
    assert state_file.suffix == ".bucket"
    with pytest.raises(AuthorizationError, match="GDF_CONSUMER_KEY is not set"):
        GoDataFeedClient.from_settings(Settings(api_url=fake.url, data_dir=tmp_path))


def test_v2_sends_the_token_as_a_bearer_header(fake, make_client):
    fake.route("GET", "/orders/o1", Reply(200, order("o1")))
    client = make_client(api_version="v2")

    client.get_order("o1")

    request = fake.seen[-1]
    assert request.path == "/v2/orders/o1"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.seen[0].path == contract.AUTHORIZATION_PATH


# Errors the API reports.


def test_400_404_and_409_raise_typed_errors(fake, make_client):
    fake.route("GET", "/orders/o1", Reply(200, order("o1", status=contract.SHIPPED)))
    fake.route("PUT", "/orders/o1/status", Reply(409, {"message": "order is SHIPPED"}))
    fake.route("POST", "/orders/o1/acknowledge", Reply(400, {"message": "number too long"}))
    fake.route("GET", "/orders/missing", Reply(404, {"message": "no such order"}))
    fake.route("PUT", "/orders/missing/status", Reply(409, {"message": "conflict"}))
    client = make_client()

    with pytest.raises(TransitionConflictError) as conflict:
        client.cancel("o1")
    assert conflict.value.current_status == contract.SHIPPED
    assert conflict.value.current_order["id"] == "o1"
    assert conflict.value.api_message == "order is SHIPPED"
    assert conflict.value.order_id == "o1"
    assert "SHIPPED" in str(conflict.value)

    with pytest.raises(BadRequestError) as bad:
        client.acknowledge("o1", "SO-1")
    assert (bad.value.status_code, bad.value.api_message) == (400, "number too long")

    with pytest.raises(OrderNotFoundError) as missing:
        client.get_order("missing")
    assert missing.value.order_id == "missing"

    with pytest.raises(TransitionConflictError) as unknown:
        client.cancel("missing")
    assert unknown.value.current_status is None
    assert len(fake.requests_to("/orders/o1/status")) == 1  # never retried


def test_ship_sends_date_and_time_with_offset(fake, make_client):
    fake.route("PUT", "/orders/o1/status", Reply(200, order("o1", status=contract.SHIPPED)))
    client = make_client()
    eastern = timezone(timedelta(hours=-5))

    client.ship(
        "o1",
        ship_date=datetime(2026, 12, 3, 14, 5, 0, 123456, tzinfo=eastern),
        carrier="UPS",
        tracking_number="",
    )
    client.ship(
        "o1",
        ship_date=datetime(2026, 12, 3, 19, 5, tzinfo=UTC),
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        shipping_method="Ground",
    )

    first, second = (s.body for s in fake.requests_to("/orders/o1/status"))
    assert first == {
        "status": "SHIPPED",
        "shipDate": "2026-12-03T14:05:00-05:00",
        "carrier": "UPS",
        "trackingNumber": "",
    }
    assert second["shipDate"] == "2026-12-03T19:05:00+00:00"
    assert second["shippingMethod"] == "Ground"


def test_ship_refuses_a_naive_date_before_sending(fake, make_client):
    client = make_client()
    with pytest.raises(ValueError, match="timezone-aware"):
        client.ship("o1", ship_date=datetime(2026, 12, 3, 14, 5), carrier="UPS")
    assert fake.seen == []


def test_cancel_and_acknowledge_bodies(fake, make_client):
    fake.route("PUT", "/orders/o%2F1/status", Reply(200, order("o/1", status="CANCELLED")))
    fake.route("POST", "/orders/o%2F1/acknowledge", Reply(200, order("o/1")))
    client = make_client()

    client.cancel("o/1")
    client.acknowledge("o/1", "SO-000123")
    with pytest.raises(ValueError, match="1 to 50"):
        client.acknowledge("o/1", "S" * 51)

    cancel, acknowledge = fake.seen[1:]
    assert cancel.body == {"status": "CANCELLED"}
    assert acknowledge.body == {"sellerOrderNumber": "SO-000123"}


# Paging.


def listing(orders: list[dict], page: int, page_size: int, total: int | None = None) -> Reply:
    cut = orders[(page - 1) * page_size : page * page_size]
    count = len(orders) if total is None else total
    return Reply(200, {"page": page, "pageSize": page_size, "totalCount": count, "orders": cut})


def paged(pages: Callable[[int, int], Reply]) -> Callable[[Seen], Reply]:
    return lambda seen: pages(int(seen.query["page"]), int(seen.query["pageSize"]))


def test_list_orders_reads_every_page_and_deduplicates(fake, make_client):
    orders = [order(f"o{n}") for n in range(7)]
    # Page 2 repeats o2 from page 1 with a newer modifiedAt: the newer copy is kept.
    newer_o2 = order("o2", modified_at="2026-12-03T10:00:00+00:00", status=contract.CANCELLED)
    pages = {
        1: Reply(200, {"totalCount": 7, "orders": orders[0:3]}),
        2: Reply(200, {"totalCount": 7, "orders": [newer_o2, *orders[3:5]]}),
        3: Reply(200, {"totalCount": 7, "orders": orders[5:7]}),
    }
    fake.route("GET", "/orders", lambda seen: pages[int(seen.query["page"])])
    progress: list[tuple[int, int]] = []
    client = make_client(page_size=3)

    result = client.list_orders(on_page=lambda so_far, total: progress.append((so_far, total)))

    assert [o["id"] for o in result] == [f"o{n}" for n in range(7)]
    assert result[2]["status"] == contract.CANCELLED
    assert progress == [(3, 7), (5, 7), (7, 7)]
    requests_seen = fake.requests_to("/orders")
    assert [r.query["page"] for r in requests_seen] == ["1", "2", "3"]
    assert requests_seen[0].query == {"status": "NEW", "page": "1", "pageSize": "3"}


def test_a_listed_order_keeps_its_text_as_received(fake, make_client):
    # Amounts a float would change, an exponent, odd spacing: kept digit for digit.
    first = '{"id": "o1", "subtotal": 1234567890.123456789, "taxTotal":1E2 , "items": []}'
    second = '{"id":"o2","modifiedAt":"2026-12-03T09:30:04Z","orderTotal":0.10}'
    fake.route("GET", "/orders", Reply(text=f'{{"totalCount": 2, "orders": [{first},{second}]}}'))
    client = make_client(page_size=5)

    kept = client.list_orders(keep=lambda listed: listed)
    parsed = client.list_orders()

    assert [listed.json_text for listed in kept] == [first, second]
    assert [listed.order_id for listed in kept] == ["o1", "o2"]
    assert kept[1].modified_at == datetime(2026, 12, 3, 9, 30, 4, tzinfo=UTC)
    assert parsed[0]["subtotal"] == Decimal("1234567890.123456789")
    assert parsed[0]["taxTotal"] == Decimal("1E2")
    assert parsed[1]["orderTotal"] == Decimal("0.10")


@pytest.mark.parametrize(
    "orders_text",
    [
        pytest.param('{"id": "o1", "x": NaN}, "just a string"', id="NaN, which JSON lacks"),
        pytest.param('{"id": "o1", "name": "\\ud800"}, 7', id="a lone surrogate"),
    ],
)
def test_a_page_the_fast_reader_refuses_is_read_in_full(fake, make_client, orders_text):
    fake.route("GET", "/orders", Reply(text=f'{{"totalCount": 2, "orders": [{orders_text}]}}'))
    client = make_client(page_size=5)

    kept = client.list_orders(keep=lambda listed: listed)

    assert [listed.order_id for listed in kept] == ["o1", None]
    assert json.loads(kept[0].json_text)["id"] == "o1"


@pytest.mark.parametrize(
    "text", ['[{"id": "o1"}]', "null", '{"totalCount": 1, "orders": {"id": "o1"}}'], ids=repr
)
def test_a_listing_answer_that_is_no_page_of_orders_is_an_error(fake, make_client, text):
    fake.route("GET", "/orders", Reply(text=text))
    client = make_client(page_size=5)

    with pytest.raises(GoDataFeedError, match="not with a page of orders"):
        client.list_orders()


def test_list_orders_stops_at_total_count_and_passes_filters(fake, make_client):
    orders = [order(f"o{n}") for n in range(4)]
    fake.route("GET", "/orders", paged(lambda page, size: listing(orders, page, size)))
    client = make_client(page_size=2)
    since = datetime(2026, 12, 1, 8, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))

    assert len(client.list_orders(status=None, modified_since=since)) == 4

    first, second = fake.requests_to("/orders")
    assert "status" not in first.query
    assert first.query["modifiedSince"] == "2026-12-01T08:30:15+02:00"
    assert second.query["page"] == "2"


def test_list_orders_rereads_when_the_listing_shrinks(fake, make_client):
    orders = [order(f"o{n}") for n in range(6)]
    calls = {"count": 0}

    def answer(seen: Seen) -> Reply:
        calls["count"] += 1
        if calls["count"] == 2:
            # o0 was acknowledged elsewhere after page 1: o2 slides onto page 1, unread.
            del orders[0]
        return listing(orders, int(seen.query["page"]), int(seen.query["pageSize"]))

    fake.route("GET", "/orders", answer)
    client = make_client(page_size=2)

    result = client.list_orders()

    assert sorted(o["id"] for o in result) == [f"o{n}" for n in range(6)]


def test_list_orders_refuses_an_endless_listing(fake, make_client):
    orders = [order("o1"), order("o2")]
    fake.route("GET", "/orders", Reply(200, {"totalCount": 100, "orders": orders}))
    client = make_client(page_size=2)

    with pytest.raises(GoDataFeedError, match="endless"):
        client.list_orders()
    # Page 3 was asked for while page 2 was read, as the total said there was one; no more.
    assert [r.query["page"] for r in fake.requests_to("/orders")] == ["1", "2", "3"]


def test_list_orders_asks_for_the_next_page_while_reading_one(fake, make_client):
    orders = [order(f"o{n}") for n in range(6)]
    fake.route("GET", "/orders", paged(lambda page, size: listing(orders, page, size)))
    client = make_client(page_size=2)
    pages_asked: list[list[str]] = []

    def on_page(so_far: int, total: int) -> None:
        # Called once page 2 is read: page 3 must be on its way already (waited for, since
        # another thread asks for it), not asked for only after this page.
        deadline = time.monotonic() + 5
        while so_far == 4 and len(fake.requests_to("/orders")) < 3:
            assert time.monotonic() < deadline, "page 3 was not asked for while page 2 was read"
            time.sleep(0.01)
        pages_asked.append([r.query["page"] for r in fake.requests_to("/orders")])

    assert len(client.list_orders(on_page=on_page)) == 6

    # Page 1 tells the total, so page 2 waits for it; nothing past the total is asked for.
    assert pages_asked == [["1"], ["1", "2", "3"], ["1", "2", "3"]]
    assert len(fake.requests_to("/orders")) == 3


# Money.


EXACT_ORDER_TEXT = (
    '{"id": "jp1", "currency": "JPY", "modifiedAt": "2026-12-03T09:30:04Z",'
    ' "subtotal": 1500, "orderTotal": 123456789012345678901234567890,'
    ' "items": [{"quantity": 3, "unitPrice": 500, "taxAmount": 0}],'
    ' "kwd": {"amount": 12.345}, "tiny": 0.1, "big": 98765432109876543.21}'
)


def test_money_is_parsed_exactly(fake, make_client):
    fake.route("GET", "/orders/jp1", Reply(200, text=EXACT_ORDER_TEXT))
    client = make_client()

    answer = client.get_order("jp1")

    assert answer["subtotal"] == Decimal(1500) and isinstance(answer["subtotal"], Decimal)
    assert answer["orderTotal"] == Decimal("123456789012345678901234567890")
    assert isinstance(answer["items"][0]["unitPrice"], Decimal)
    assert answer["items"][0]["quantity"] == 3 and isinstance(answer["items"][0]["quantity"], int)
    assert answer["kwd"]["amount"] == Decimal("12.345")
    assert answer["big"] == Decimal("98765432109876543.21")
    assert answer["tiny"] + answer["tiny"] + answer["tiny"] == Decimal("0.3")
    assert json.loads(dumps_exact(answer), parse_float=Decimal)["big"] == answer["big"]
    assert "98765432109876543.21" in dumps_exact(answer)


# Secrets.


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in (TOKEN, SECOND_TOKEN, CONSUMER_KEY, quote(CONSUMER_KEY, safe="")):
            assert secret not in text
        assert "ck%2Ftest" not in text and "Zq9" not in text


def test_client_repr_holds_no_secret(fake, make_client):
    fake.route("GET", "/orders/o1", Reply(200, order("o1")))
    client = make_client()
    client.get_order("o1")
    assert_no_secrets(repr(client), str(client))


def test_faulty_run_leaks_no_secret_into_logs_or_errors(fake, make_client, caplog):
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="urllib3")
    fake.issued_tokens = [TOKEN, SECOND_TOKEN]
    throttled = Reply(429, {"message": "full"}, {contract.RETRY_AFTER_HEADER: "0"})
    fake.route("GET", "/orders/o1", DROP, throttled, Reply(500, {"message": "x"}), order_reply())
    fake.route("POST", "/orders/o1/acknowledge", Reply(409, {"message": "already acknowledged"}))
    fake.route("GET", "/orders/o2", Reply(503, {"message": f"token {TOKEN} is broken"}))
    client = make_client(backoff_factor=0.001, max_attempts=4)
    errors: list[BaseException] = []

    client.get_order("o1")
    fake.valid_tokens = set()
    for call in (
        lambda: client.acknowledge("o1", "SO-1"),
        lambda: client.get_order("o2"),
        lambda: make_client(base_url="http://127.0.0.1:9", max_attempts=2).get_order("o1"),
    ):
        try:
            call()
        except GoDataFeedError as error:
            errors.append(error)

    assert [type(e) for e in errors] == [TransitionConflictError, TransientError, TransientError]
    urllib3_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/v1/***/orders" in line for line in urllib3_lines)
    assert any("consumerKey=***" in line for line in urllib3_lines)
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        texts += [str(getattr(error, name, "")) for name in ("api_message", "current_order")]
    assert_no_secrets(*texts)


def order_reply() -> Reply:
    return Reply(200, order("o1"))


# End to end against the emulator.


def _emulator():
    return pytest.importorskip("gdf_pipeline.emulator")


ACK_SNIPPET = """
import sys
from pathlib import Path
from gdf_pipeline.gdf.client import GoDataFeedClient
from gdf_pipeline.gdf.ratelimit import SharedLeakyBucket

url, key, state_dir, prefix, *order_ids = sys.argv[1:]
bucket = SharedLeakyBucket(Path(state_dir), key, burst=10, per_second=20)
with GoDataFeedClient(url, key, rate_limiter=bucket) as client:
    for order_id in order_ids:
        client.acknowledge(order_id, prefix + order_id[:8])
    print(client.stats.throttled)
"""


def test_two_processes_on_one_key_never_meet_a_429(tmp_path):
    emulator_module = _emulator()
    emulator = emulator_module.Emulator(orders=40, seed=7, rate_burst=10, rate_per_second=20)
    emulator.start()
    try:
        with GoDataFeedClient(
            emulator.url,
            emulator.consumer_key,
            rate_limiter=SharedLeakyBucket(tmp_path, emulator.consumer_key, 10, 20),
            page_size=250,
        ) as client:
            ids = [o["id"] for o in client.list_orders()]
        halves = (ids[0::2], ids[1::2])
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", ACK_SNIPPET, emulator.url, emulator.consumer_key]
                + [str(tmp_path), f"P{n}-", *half],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n, half in enumerate(halves)
        ]
        outputs = [p.communicate(timeout=60)[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0]
        assert [int(out.strip()) for out in outputs] == [0, 0]
        assert emulator.stats.rate_limited == 0
        statuses = {emulator.order(i)["status"] for i in ids}
        assert statuses == {contract.ACKNOWLEDGED}
    finally:
        emulator.stop()


def test_emulator_gives_each_order_once_under_faults(tmp_path):
    emulator_module = _emulator()
    faults = emulator_module.Faults(transient_rate=0.2, token_expiry_calls=25, drop_rate=0.05)
    emulator = emulator_module.Emulator(
        orders=120, seed=11, rate_burst=50, rate_per_second=200, faults=faults
    ).start()
    try:
        with GoDataFeedClient(
            emulator.url, emulator.consumer_key, backoff_factor=0.01, page_size=25
        ) as client:
            orders = client.list_orders()
            for item in orders:
                client.acknowledge(item["id"], "SO-" + item["id"][:8])
            assert client.stats.reauthorizations >= 1
            assert client.stats.retries >= 1

        ids = [o["id"] for o in orders]
        assert len(ids) == len(set(ids)) == 120
        assert set(emulator.stats.acknowledge_calls) == set(ids)
        for item in orders:
            stored = emulator.order(item["id"])
            assert stored["status"] == contract.ACKNOWLEDGED
            assert stored["sellerOrderNumber"] == "SO-" + item["id"][:8]
    finally:
        emulator.stop()


def test_emulator_paging_with_imports_misses_nothing():
    emulator_module = _emulator()
    emulator = emulator_module.Emulator(
        orders=60, seed=5, faults=emulator_module.Faults(import_during_paging=3)
    ).start()
    before = {o["id"] for o in emulator.all_orders()}
    pages: list[int] = []

    def stop_importing_after_a_while(so_far: int, total: int) -> None:
        # Imports land within the same second as the newest orders, so some sort onto pages
        # already read; once they stop, a further pass must find every one of them.
        pages.append(so_far)
        if len(pages) == 6:
            emulator.faults = emulator_module.Faults()

    try:
        with GoDataFeedClient(emulator.url, emulator.consumer_key, page_size=10) as client:
            orders = client.list_orders(on_page=stop_importing_after_a_while)
        ids = [o["id"] for o in orders]
        assert len(ids) == len(set(ids))
        assert before < set(ids)
        assert set(ids) == {o["id"] for o in emulator.all_orders(contract.NEW)}
    finally:
        emulator.stop()


@pytest.mark.parametrize("mode", ["absent", "zero", "positive", "random"])
def test_emulator_retry_after_modes_recover_without_a_storm(mode):
    emulator_module = _emulator()
    emulator = emulator_module.Emulator(
        orders=12,
        seed=3,
        rate_burst=8,
        rate_per_second=20,
        faults=emulator_module.Faults(retry_after=mode),
    ).start()
    try:
        # No shared bucket here: the client runs into the emulator's limit on purpose.
        with GoDataFeedClient(emulator.url, emulator.consumer_key, backoff_factor=0.05) as c:
            orders = c.list_orders()
            details = [c.get_order(item["id"]) for item in orders]
        assert len(details) == 12
        stats = emulator.stats
        assert stats.rate_limited == c.stats.throttled >= 1
        assert stats.rate_limited < stats.requests - stats.rate_limited
    finally:
        emulator.stop()


def test_emulator_money_is_exact():
    emulator_module = _emulator()
    emulator = emulator_module.Emulator(orders=60, seed=13).start()
    try:
        with GoDataFeedClient(emulator.url, emulator.consumer_key, page_size=250) as client:
            orders = client.list_orders(status=None)
        assert {"JPY", "KWD"} <= {item["currency"] for item in orders}
        for item in orders:
            expected = emulator.order(item["id"])
            pairs = [(item, expected, contract.ORDER_MONEY_FIELDS)] + [
                (line, expected_line, contract.ITEM_MONEY_FIELDS)
                for line, expected_line in zip(item["items"], expected["items"], strict=True)
            ]
            for got, want, names in pairs:
                for name in names:
                    assert isinstance(got[name], Decimal)
                    assert got[name] == want[name]
                    assert -got[name].as_tuple().exponent <= contract.minor_digits(item["currency"])
    finally:
        emulator.stop()
