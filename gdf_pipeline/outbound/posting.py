"""Posting due status updates to GoDataFeed and turning each answer into a ledger outcome.

The warehouse connection is open only to claim a batch and to record its outcomes, never
while a request is in flight: a slow or throttled API must not hold the writer lock that the
inbound sync and other runs wait for.

Answers and their outcomes:
- 200: POSTED (also when GoDataFeed already held this very update: a crash between posting
  and recording is repaired by posting again);
- 409 while the order is still NEW at GoDataFeed: WAITING_ACK, tried again later;
- any other 409: CONFLICT, with the order's status, shipment and cancellation at GoDataFeed;
- 400 or 404: REJECTED, with GoDataFeed's message;
- still failing after the client's retries: FAILED, tried again after a backoff.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import requests

from gdf_pipeline.faults import crash_point
from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.errors import (
    AuthorizationError,
    BadRequestError,
    GoDataFeedError,
    OrderNotFoundError,
    TransientError,
    TransitionConflictError,
)
from gdf_pipeline.outbound import ledger
from gdf_pipeline.outbound.ledger import ClaimedUpdate, Outcome

log = logging.getLogger(__name__)

CLAIM_BATCH = 50


class PostingStopped(RuntimeError):
    """GoDataFeed refused the pipeline's authorization; no further update can be posted."""


def post_due_updates(
    warehouse,
    gdf,
    *,
    run_id: str,
    logger=log,
    ignore_backoff: bool = False,
    batch_size: int = CLAIM_BATCH,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Counter:
    """Posts every due status update once, a batch at a time; returns the run's counts.

    Raises PostingStopped when GoDataFeed refuses the authorization; what was posted until
    then is recorded, and the rest stays due.
    """
    counts = Counter()
    with ExitStack() as alive:
        with warehouse.get_connection() as conn:
            # Marked under the writer lock, which every sweep of dead runs' markers holds too:
            # no run sees this marker between its creation and its lock.
            alive.enter_context(_posting_marker(_markers(warehouse), run_id))
            ledger.mark_waiting(conn, clock())
            release_dead_claims(warehouse, conn, logger)

        with gdf.get_client() as client:
            try:
                while batch := _claim(warehouse, run_id, clock(), batch_size, ignore_backoff):
                    _post_batch(warehouse, client, batch, run_id, counts, logger, clock)
            finally:
                stats = client.stats
                counts.update(
                    api_calls=stats.calls,
                    api_retries=stats.retries,
                    api_429s=stats.throttled,
                    api_reauthorizations=stats.reauthorizations,
                )

    with warehouse.get_connection() as conn:
        counts["waiting"] = ledger.count_waiting(conn)
    return counts


def post_one(client, update: ClaimedUpdate, *, now: datetime) -> Outcome:
    """Sends one status update and maps GoDataFeed's answer to its ledger outcome.

    Raises AuthorizationError: no later update could be posted either.
    """
    try:
        if update.status == contract.SHIPPED:
            order = client.ship(
                update.gdf_order_id,
                ship_date=datetime.fromisoformat(update.ship_date_sent),
                carrier=update.carrier,
                tracking_number=update.tracking_number,
                shipping_method=update.shipping_method or None,
            )
        else:
            order = client.cancel(update.gdf_order_id)
    except AuthorizationError:
        raise
    except TransitionConflictError as error:
        return _conflict(client, update, error, now)
    except (BadRequestError, OrderNotFoundError) as error:
        return Outcome(update.update_key, ledger.REJECTED, _message(error))
    except (TransientError, GoDataFeedError, requests.RequestException) as error:
        return _failed(update, _message(error), now)

    status = order.get(contract.STATUS_FIELD) if isinstance(order, dict) else None
    return Outcome(update.update_key, ledger.POSTED, gdf_status=status)


def release_dead_claims(warehouse, conn: duckdb.DuckDBPyConnection, logger=log) -> int:
    """Gives back the claims of runs that died while posting; returns how many.

    Such updates are due again at once, instead of when the claims expire. Call it with the
    writer lock held (conn open): it also removes the markers of runs that died.
    """
    dead = _dead_runs(_markers(warehouse), ledger.claiming_runs(conn))
    released = ledger.release_runs_claims(conn, dead)
    if released:
        logger.info(f"Took back {released} status updates claimed by runs that died")
    return released


def _markers(warehouse) -> Path:
    return Path(warehouse.database).with_suffix(".posting")


@contextmanager
def _posting_marker(folder: Path, run_id: str) -> Iterator[None]:
    """Holds an exclusive lock on <folder>/<run_id>.alive while this run may hold claims.

    A run killed between posting and recording cannot give its claims back. The kernel drops
    the lock with the process, so the next run can tell a dead run's claims from a live one's
    and take them back at once instead of waiting for them to expire.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.alive"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _dead_runs(folder: Path, claiming: list[str]) -> list[str]:
    """Runs that died: every run whose marker is no longer locked (the marker is removed),
    and every run holding claims without a marker."""
    dead = []
    for path in sorted(folder.glob("*.alive")) if folder.is_dir() else []:
        if _unlocked(path):
            dead.append(path.name.removesuffix(".alive"))
            path.unlink(missing_ok=True)
    for run_id in claiming:
        if not run_id or Path(run_id).name != run_id:
            continue  # not a run id this module wrote; its claim expires on its own
        if run_id not in dead and not (folder / f"{run_id}.alive").exists():
            dead.append(run_id)
    return dead


def _unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False  # its run just finished and removed it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _claim(warehouse, run_id, now, batch_size, ignore_backoff) -> list[ClaimedUpdate]:
    with warehouse.get_connection() as conn:
        return ledger.claim_due(
            conn, run_id=run_id, now=now, limit=batch_size, ignore_backoff=ignore_backoff
        )


def _post_batch(warehouse, client, batch, run_id, counts, logger, clock) -> None:
    # Outcomes are recorded even when the batch stops half-way; the claims it did not use are
    # given back so the next run takes them at once.
    outcomes: list[Outcome] = []
    try:
        for update in batch:
            try:
                outcome = post_one(client, update, now=clock())
                crash_point("status_update")
            except AuthorizationError as error:
                outcomes.append(Outcome(update.update_key, ledger.FAILED, _message(error)))
                counts["failed"] += 1
                raise PostingStopped(
                    f"GoDataFeed refused the pipeline's authorization: {error}. Check "
                    "GDF_CONSUMER_KEY; the status updates not posted stay due."
                ) from None
            outcomes.append(outcome)
            counts[_COUNTED[outcome.state]] += 1
            _log_outcome(logger, update, outcome)
    finally:
        with warehouse.get_connection() as conn:
            ledger.record_outcomes(conn, outcomes, run_id=run_id, now=clock())
            done = {outcome.update_key for outcome in outcomes}
            unused = [update.update_key for update in batch if update.update_key not in done]
            ledger.release_claims(conn, unused, run_id)


def _conflict(client, update: ClaimedUpdate, error, now: datetime) -> Outcome:
    current = getattr(error, "current_order", None)
    if not isinstance(current, dict):
        current = _fetch_order(client, update.gdf_order_id)
    status = getattr(error, "current_status", None) or (current or {}).get(contract.STATUS_FIELD)

    if status == contract.NEW:
        # GoDataFeed takes status updates only after the acknowledgement; wait for it.
        return Outcome(
            update.update_key,
            ledger.WAITING_ACK,
            f"order {update.order_number} is not acknowledged at GoDataFeed yet",
            gdf_status=status,
            next_attempt_at=ledger.retry_at(update.attempts + 1, now),
        )
    return Outcome(
        update.update_key,
        ledger.CONFLICT,
        f"order {update.order_number} is {status or 'in another state'} at GoDataFeed: "
        f"{_message(error)}",
        gdf_status=status,
        gdf_current=_current_values(current, status),
    )


def _fetch_order(client, gdf_order_id: str) -> dict | None:
    # A 409 without the order in it: fetch the order once so the conflict shows both sides.
    try:
        return client.get_order(gdf_order_id)
    except Exception as error:  # the conflict is recorded either way
        log.warning("Could not fetch order %s after a conflict: %s", gdf_order_id, error)
        return None


def _current_values(order: dict | None, status: str | None) -> dict:
    order = order or {}
    return {
        "status": status or order.get(contract.STATUS_FIELD),
        "shipment": order.get("shipment"),
        "cancelledAt": order.get("cancelledAt"),
        "modifiedAt": order.get("modifiedAt"),
    }


def _failed(update: ClaimedUpdate, reason: str, now: datetime) -> Outcome:
    return Outcome(
        update.update_key,
        ledger.FAILED,
        reason,
        next_attempt_at=ledger.retry_at(update.attempts + 1, now),
    )


def _message(error: Exception) -> str:
    return getattr(error, "api_message", None) or str(error) or type(error).__name__


_COUNTED = {
    ledger.POSTED: "posted",
    ledger.WAITING_ACK: "waiting",
    ledger.CONFLICT: "conflicts",
    ledger.REJECTED: "rejected_by_gdf",
    ledger.FAILED: "failed",
}


def _log_outcome(logger, update: ClaimedUpdate, outcome: Outcome) -> None:
    if outcome.state == ledger.POSTED:
        logger.debug(f"Posted {update.status} for order {update.order_number}")
    else:
        logger.warning(
            f"Status update {update.status} for order {update.order_number}: "
            f"{outcome.state}: {outcome.error}"
        )
