"""Secret redaction: the registry, the logging filter, the client's errors, and a faulty run.

The last test runs the client against the emulator with every fault switched on and captures
all log records (urllib3's included, at DEBUG) and every error text: neither the consumer key
nor any token the client received may appear in them.
"""

from __future__ import annotations

import logging
import pickle
import sys
import traceback
from datetime import UTC, datetime

import pytest

from gdf_pipeline.gdf import client as client_module
from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.errors import GoDataFeedError, TransitionConflictError
from gdf_pipeline.gdf.redaction import (
    REDACTED,
    RedactingFilter,
    install_redaction_filter,
    redact,
    register_secret,
)

SECRET = "s3cr3t/key+with=odd chars"
TOKEN = "00112233445566778899aabbccddeeff"


@pytest.fixture(autouse=True)
def secrets() -> None:
    register_secret(SECRET)
    register_secret(TOKEN)


def test_redact_replaces_every_form_of_a_secret():
    text = f"GET /v1/{TOKEN}/orders?consumerKey=s3cr3t%2Fkey%2Bwith%3Dodd+chars {SECRET}"

    assert redact(text) == f"GET /v1/{REDACTED}/orders?consumerKey={REDACTED} {REDACTED}"
    assert redact("nothing to hide") == "nothing to hide"
    assert redact(42) == "42"


def test_a_secret_inside_a_longer_one_does_not_leave_a_tail():
    register_secret("abcd1234")
    register_secret("abcd1234-and-more")

    assert redact("x abcd1234-and-more y") == f"x {REDACTED} y"


def test_empty_secrets_are_ignored():
    register_secret("")
    register_secret(None)

    assert redact("a b c") == "a b c"


def make_record(msg: str, args: tuple = (), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1, msg, args, exc_info
    )


def test_the_filter_rewrites_a_record_with_a_secret_in_its_arguments():
    record = make_record('"%s %s" %s', ("GET", f"/v1/{TOKEN}/orders", 200))

    assert RedactingFilter().filter(record) is True

    assert record.getMessage() == f'"GET /v1/{REDACTED}/orders" 200'
    assert record.args is None


def test_the_filter_leaves_a_clean_record_untouched():
    record = make_record("Starting new HTTP connection (%d): %s", (1, "127.0.0.1"))

    RedactingFilter().filter(record)

    assert record.args == (1, "127.0.0.1")


def test_the_filter_scrubs_tracebacks_and_stacks():
    try:
        raise ConnectionError(f"Max retries exceeded with url: /v1/{TOKEN}/orders")
    except ConnectionError:
        record = make_record("request failed", exc_info=sys.exc_info())
    record.stack_info = f"Stack (most recent call last):\n  url = '/v1/{TOKEN}/orders'"

    RedactingFilter().filter(record)
    rendered = logging.Formatter().format(record)

    assert TOKEN not in rendered
    assert "Max retries exceeded" in rendered
    assert record.exc_info is None


def test_installing_is_idempotent_and_reaches_urllib3_children():
    install_redaction_filter()
    installed = install_redaction_filter()

    for name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "requests"):
        assert logging.getLogger(name).filters.count(installed) == 1


def test_a_handler_added_after_installing_still_gets_clean_urllib3_records():
    install_redaction_filter()
    captured: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: captured.append(handler.format(record))
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("Retry: %s", f"/v1/{TOKEN}/orders")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    assert captured == [f"Retry: /v1/{REDACTED}/orders"]


def test_errors_redact_their_texts_and_survive_pickling():
    error = TransitionConflictError(
        f"refused at /v1/{TOKEN}/orders/o1/status",
        status_code=409,
        api_message=f"token {TOKEN} says no",
        order_id="o1",
        current_status=contract.SHIPPED,
    )

    copy = pickle.loads(pickle.dumps(error))

    assert TOKEN not in str(error) + repr(error) + str(error.api_message)
    assert (copy.status_code, copy.order_id, copy.current_status) == (409, "o1", "SHIPPED")
    assert str(copy) == str(error)
    assert isinstance(copy, GoDataFeedError)


def test_a_faulty_run_leaks_no_secret(caplog, monkeypatch, tmp_path):
    emulator_module = pytest.importorskip("gdf_pipeline.emulator")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    tokens: list[str] = []

    def register_and_remember(secret: str | None) -> None:
        tokens.append(secret)
        register_secret(secret)

    monkeypatch.setattr(client_module, "register_secret", register_and_remember)
    faults = emulator_module.Faults(
        transient_rate=0.3, drop_rate=0.1, token_expiry_calls=4, retry_after="zero"
    )
    emulator = emulator_module.Emulator(
        orders=15, seed=21, rate_burst=4, rate_per_second=40, faults=faults
    ).start()
    errors: list[BaseException] = []
    try:
        for version in ("v1", "v2"):
            with client_module.GoDataFeedClient(
                emulator.url,
                emulator.consumer_key,
                api_version=version,
                backoff_factor=0.005,
                max_attempts=3,
            ) as client:
                for order_id in [o["id"] for o in emulator.all_orders()][:8]:
                    for call in (
                        lambda order_id=order_id: client.acknowledge(order_id, "SO-1"),
                        lambda order_id=order_id: client.cancel(order_id),
                        lambda order_id=order_id: client.ship(
                            order_id, ship_date=datetime.now(UTC), carrier="UPS"
                        ),
                    ):
                        try:
                            call()
                        except GoDataFeedError as error:
                            errors.append(error)
        emulator.faults = emulator_module.Faults()
        with client_module.GoDataFeedClient(
            emulator.url, emulator.consumer_key, max_attempts=2, backoff_factor=0.001
        ) as client:
            emulator.stop()
            try:
                client.list_orders()
            except GoDataFeedError as error:
                errors.append(error)
    finally:
        emulator.stop()

    secrets = {emulator.consumer_key, *tokens}
    assert len(secrets) >= 4  # the key and several tokens, as tokens expired on the way
    assert any(isinstance(error, TransitionConflictError) for error in errors)
    assert any(r.name.startswith("urllib3") and REDACTED in r.getMessage() for r in caplog.records)
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for text in texts:
        for secret in secrets:
            assert secret not in text
