"""The emulator's HTTP side: routing, parameter and body parsing, and in-process start and stop.

The standard library's threading HTTP server is enough for a loopback emulator and keeps the
project free of a web framework. Every answer, errors included, is JSON with a Content-Length,
so clients can keep connections alive across calls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.contract import (
    ACKNOWLEDGE_PATH,
    AUTHORIZATION_HEADER,
    AUTHORIZATION_PATH,
    BEARER_SCHEME,
    CONSUMER_KEY_PARAM,
    MESSAGE_FIELD,
    MODIFIED_SINCE_PARAM,
    ORDER_PATH,
    ORDER_STATUSES,
    ORDERS_PATH,
    PAGE_PARAM,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    PAGE_SIZE_PARAM,
    RETRY_AFTER_HEADER,
    STATUS_PARAM,
    STATUS_PATH,
    V1_PREFIX,
    V2_PREFIX,
)

from .store import ApiError, Faults, Stats, Store, parse_date_time

logger = logging.getLogger(__name__)

_V1_ROOT = V1_PREFIX.split("{token}")[0]
_MAX_BODY_BYTES = 1 << 20
_INTEGER = re.compile(r"[0-9]{1,9}")
_BEARER = re.compile(re.escape(BEARER_SCHEME) + r" +(\S+)", re.IGNORECASE)

# v1 puts the token in the path and authorization puts the consumer key in the query: both are
# masked before a request line reaches a log.
_TOKEN_IN_PATH = re.compile(
    re.escape(_V1_ROOT) + r"(?!" + re.escape(AUTHORIZATION_PATH[len(_V1_ROOT) :]) + r"(?:[/?\s]|$))"
    r"[^/?\s]+"
)
_KEY_IN_QUERY = re.compile(r"(" + re.escape(CONSUMER_KEY_PARAM) + r"=)[^&\s]+")


def redact(text: str) -> str:
    """The text with v1 tokens in paths and consumer keys in queries replaced by `***`."""
    return _KEY_IN_QUERY.sub(r"\1***", _TOKEN_IN_PATH.sub(_V1_ROOT + "***", text))


def _route(template: str) -> re.Pattern:
    before, placeholder, after = template.partition("{order_id}")
    if not placeholder:
        return re.compile(re.escape(template))
    return re.compile(re.escape(before) + r"(?P<order_id>[^/]+)" + re.escape(after))


# Resource path, method, and the name of the handler method that answers it.
_ROUTES = (
    (_route(ORDERS_PATH), "GET", "_list_orders"),
    (_route(ORDER_PATH), "GET", "_get_order"),
    (_route(ACKNOWLEDGE_PATH), "POST", "_acknowledge"),
    (_route(STATUS_PATH), "PUT", "_update_status"),
)


class _BodyCutShort(Exception):
    """The connection closed before the request's body was complete."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GoDataFeedEmulator/1.0"
    server: _Server

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _handle(self) -> None:
        store = self.server.store
        try:
            raw_body = self._read_body()
        except _BodyCutShort:
            # The client went away mid-request (a killed process): like any server, the
            # emulator never acts on half a request.
            self.close_connection = True
            return
        except ValueError as error:
            self.close_connection = True
            self._send_message(400, str(error))
            return

        # Faults strike before the call takes effect, so a failed call changed nothing.
        if store.faults.latency:
            time.sleep(store.faults.latency)
        admission = store.admit()
        if admission.drop:
            self.close_connection = True
            return
        if admission.status is not None:
            message = (
                "Rate limit exceeded: the bucket is full."
                if admission.status == 429
                else "Temporary failure; repeat the call."
            )
            self._send_message(admission.status, message, admission.retry_after)
            return

        try:
            status, body = 200, self._dispatch(raw_body)
        except ApiError as error:
            status, body = error.status, _message(error.message)
        except Exception:
            logger.exception("Emulator failed on %s", redact(self.command + " " + self.path))
            status, body = 500, _message("Internal error.")
        self._send(status, body)

    def _dispatch(self, raw_body: bytes) -> str:
        url = urlsplit(self.path)
        path, store = url.path, self.server.store
        query = parse_qs(url.query, keep_blank_values=True)
        if path == AUTHORIZATION_PATH:
            self._require_method("GET")
            key = _single(query, CONSUMER_KEY_PARAM)
            return json.dumps(store.authorize(key))

        if path.startswith(_V1_ROOT):
            token, slash, rest = path[len(_V1_ROOT) :].partition("/")
            token, resource = unquote(token), slash + rest
        elif path.startswith(V2_PREFIX + "/"):
            match = _BEARER.fullmatch(self.headers.get(AUTHORIZATION_HEADER, "").strip())
            token, resource = (match[1] if match else None), path[len(V2_PREFIX) :]
        else:
            raise ApiError(404, f"No resource at {redact(path)}.")
        store.check_token(token)

        for pattern, method, handler in _ROUTES:
            match = pattern.fullmatch(resource)
            if match:
                self._require_method(method)
                order_id = unquote(match["order_id"]) if "order_id" in match.re.groupindex else None
                return getattr(self, handler)(query, order_id, raw_body)
        raise ApiError(404, f"No resource at {redact(path)}.")

    def _list_orders(self, query: dict, _order_id: None, _raw_body: bytes) -> str:
        status = _single(query, STATUS_PARAM)
        if status is not None and status not in ORDER_STATUSES:
            raise ApiError(400, f"{STATUS_PARAM} must be one of {', '.join(ORDER_STATUSES)}.")
        modified_since = _single(query, MODIFIED_SINCE_PARAM)
        since = None
        if modified_since is not None:
            since = parse_date_time(modified_since, date_only_ok=False)
            if since is None:
                raise ApiError(
                    400,
                    f"{MODIFIED_SINCE_PARAM} must be an ISO 8601 date-time with an offset or Z.",
                )
        page = _integer(query, PAGE_PARAM, 1, 1, None)
        page_size = _integer(
            query, PAGE_SIZE_PARAM, PAGE_SIZE_DEFAULT, PAGE_SIZE_MIN, PAGE_SIZE_MAX
        )
        return self.server.store.list_orders(status, since, page, page_size)

    def _get_order(self, _query: dict, order_id: str, _raw_body: bytes) -> str:
        return self.server.store.get_order(order_id)

    def _acknowledge(self, _query: dict, order_id: str, raw_body: bytes) -> str:
        return self.server.store.acknowledge(order_id, _json_body(raw_body))

    def _update_status(self, _query: dict, order_id: str, raw_body: bytes) -> str:
        return self.server.store.update_status(order_id, _json_body(raw_body))

    def _require_method(self, method: str) -> None:
        if self.command != method:
            raise ApiError(405, f"{self.command} is not allowed here; use {method}.")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not _INTEGER.fullmatch(length.strip()) or int(length) > _MAX_BODY_BYTES:
            raise ValueError("Invalid or too large Content-Length.")
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            raise _BodyCutShort
        return body

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(64).split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise ValueError("Invalid chunked body.") from None
            total += size
            if total > _MAX_BODY_BYTES:
                raise ValueError("Body too large.")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send_message(self, status: int, message: str, retry_after: str | None = None) -> None:
        self._send(status, _message(message), retry_after)

    def _send(self, status: int, body: str, retry_after: str | None = None) -> None:
        data = body.encode("utf-8")
        # Counted before the answer leaves, so a client that has its answer sees it counted.
        self.server.store.record_response(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header(RETRY_AFTER_HEADER, retry_after)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body leave in one write: two small writes would meet Nagle's algorithm
        # and the client's delayed ACK, and stall every call by tens of milliseconds.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        # Malformed requests and unsupported methods get JSON bodies too.
        self.close_connection = True
        self._send_message(code, message or HTTPStatus(code).phrase)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        logger.info("%s %s", self.address_string(), redact(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store):
        self.store = store
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Ends kept-alive connections, whose handler threads would otherwise wait on them."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Emulator:
    """A local GoDataFeed Order API that follows the project's contract, on loopback.

    `orders` NEW orders are generated from `seed` at construction. `rate_burst` and
    `rate_per_second` set the leaky bucket; `rate_burst=0` turns the rate limit off.
    `token_lifespan_days` is None (tokens never expire), 7, 14 or 30. `faults` injects
    misbehaviour, see `Faults`. The consumer key is derived from the seed unless given.

    Use it as a context manager, or `start()` and `stop()`:

        with Emulator(orders=100, seed=1) as emulator:
            requests.get(f"{emulator.url}/v1/authorization",
                         params={"consumerKey": emulator.consumer_key})
    """

    def __init__(
        self,
        orders: int = 0,
        seed: int = 0,
        rate_burst: int = contract.RATE_LIMIT_BURST,
        rate_per_second: float = contract.RATE_LIMIT_PER_SECOND,
        token_lifespan_days: int | None = None,
        faults: Faults | None = None,
        consumer_key: str | None = None,
    ):
        self._store = Store(
            orders=orders,
            seed=seed,
            rate_burst=rate_burst,
            rate_per_second=rate_per_second,
            token_lifespan_days=token_lifespan_days,
            faults=faults or Faults(),
            consumer_key=consumer_key,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Serves in a daemon thread; port 0 picks a free port. Returns self."""
        if self._server is not None:
            raise RuntimeError("The emulator is already running.")
        self._server = _Server((host, port), self._store)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="gdf-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes every open connection; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def consumer_key(self) -> str:
        return self._store.consumer_key

    @property
    def store_id(self) -> str:
        return self._store.store_id

    @property
    def faults(self) -> Faults:
        return self._store.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._store.set_faults(faults)

    @property
    def stats(self) -> Stats:
        """A copy of the counts so far: requests, answers by status, 429s, calls per order."""
        return self._store.snapshot_stats()

    def reset_stats(self) -> None:
        self._store.reset_stats()

    def order(self, order_id: str) -> dict:
        """A copy of one order as the API would answer it; KeyError when unknown."""
        return self._store.order(order_id)

    def all_orders(self, status: str | None = None) -> list[dict]:
        """Copies of all orders (or those in `status`), in listing order."""
        return self._store.all_orders(status)

    def count(self, status: str | None = None) -> int:
        return self._store.count(status)

    def import_orders(self, count: int) -> list[str]:
        """Imports `count` NEW orders with `importedAt` now; returns their ids."""
        return self._store.import_orders(count)

    def import_malformed(self, changes: list[dict]) -> list[str]:
        """Imports one NEW order per dict of top-level changes (`REMOVE` deletes a field), for
        quarantine tests; returns the ids the emulator files them under."""
        return self._store.import_malformed(changes)

    def amend_order(self, order_id: str, change: dict) -> dict:
        """Changes an order's top-level fields, as a seller's fix at the marketplace would."""
        return self._store.amend_order(order_id, change)

    def cancel_upstream(self, order_id: str) -> dict:
        """The marketplace cancels an order (NEW or ACKNOWLEDGED); ValueError when SHIPPED."""
        return self._store.cancel_upstream(order_id)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 from now on."""
        self._store.expire_tokens()


def _message(text: str) -> str:
    return json.dumps({MESSAGE_FIELD: text})


def _single(query: dict, name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise ApiError(400, f"{name} is given more than once.")
    return values[0]


def _integer(query: dict, name: str, default: int, low: int, high: int | None) -> int:
    text = _single(query, name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text) or int(text) < low or (high is not None and int(text) > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ApiError(400, f"{name} must be a whole number {bounds}.")
    return int(text)


def _json_body(raw_body: bytes) -> object:
    if not raw_body.strip():
        return None
    try:
        return json.loads(raw_body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "The body is not valid JSON.") from None


__all__ = ["Emulator", "Faults", "Stats", "redact"]
