"""The outbound sensors, evaluated directly: cursor in, cursor out, and which runs they request.

shipment_files_sensor: one run per new file content, keyed by its hash; the same content
dropped again (under any name) starts no run and is moved aside; an edited file runs; files
being written, hidden files and symlinks are not seen. shipments_table_sensor: a run only when
oms.shipments has new rows or a status update is due, and never while its last run is going.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from gdf_pipeline.outbound import post_status_updates_job
from gdf_pipeline.outbound.sensors import shipment_files_sensor, shipments_table_sensor
from gdf_pipeline.resources import GoDataFeedResource
from gdf_pipeline.warehouse import Warehouse

CONTENT = b"order_number,carrier,tracking_number\nSO-404,UPS,1Z1\n"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """GDF_DATA_DIR in a temporary folder with an empty inbox, a warehouse and an instance."""
    monkeypatch.setenv("GDF_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GDF_TIMEZONE", raising=False)
    inbox = tmp_path / "inbox" / "shipments"
    inbox.mkdir(parents=True)
    warehouse = Warehouse(
        database=str(tmp_path / "warehouse.duckdb"),
        analytics_copy_path=str(tmp_path / "analytics" / "analytics_copy.duckdb"),
    )
    return {
        "dir": tmp_path,
        "inbox": inbox,
        "warehouse": warehouse,
        "instance": DagsterInstance.ephemeral(),
    }


def evaluate_files(place, cursor=None):
    context = build_sensor_context(cursor=cursor, resources={"warehouse": place["warehouse"]})
    return shipment_files_sensor(context)


def run_requested(place, request: RunRequest) -> None:
    """Executes a requested run; its rows name no known order, so nothing is posted."""
    gdf = GoDataFeedResource(
        api_url="http://127.0.0.1:9", consumer_key="unused", state_dir=str(place["dir"] / "st")
    )
    result = post_status_updates_job.execute_in_process(
        run_config=request.run_config,
        instance=place["instance"],
        resources={"warehouse": place["warehouse"], "gdf": gdf},
    )
    assert result.success


def test_a_new_file_requests_one_run_keyed_by_its_content_and_the_cursor_remembers(place):
    (place["inbox"] / "a.csv").write_bytes(CONTENT)

    first = evaluate_files(place)

    (request,) = first.run_requests
    assert request.run_key == "shipment-file-" + hashlib.sha256(CONTENT).hexdigest()
    config = request.run_config["ops"]["queue_status_updates"]["config"]
    assert config == {"files": ["a.csv"], "scan_inbox": False, "read_table": False}
    cursor = json.loads(first.cursor)
    assert list(cursor["requested"]) == [hashlib.sha256(CONTENT).hexdigest()]
    assert cursor["seen"]["a.csv"][-1] == hashlib.sha256(CONTENT).hexdigest()

    second = evaluate_files(place, cursor=first.cursor)

    assert not second.run_requests
    assert "already requested" in second.skip_reason.skip_message
    assert json.loads(second.cursor)["requested"] == cursor["requested"]


def test_an_identical_redrop_is_skipped_and_an_edited_file_runs(place):
    inbox = place["inbox"]
    (inbox / "a.csv").write_bytes(CONTENT)
    first = evaluate_files(place)
    run_requested(place, first.run_requests[0])
    assert not (inbox / "a.csv").exists()

    (inbox / "b.csv").write_bytes(CONTENT)
    redrop = evaluate_files(place, cursor=first.cursor)

    assert not redrop.run_requests
    assert not (inbox / "b.csv").exists()
    assert len(list((inbox / "rejected").glob("*-b.csv"))) == 1
    assert len(list((inbox / "rejected").glob("*-b.errors.csv"))) == 1

    dropped = json.loads(first.cursor)["seen"]["a.csv"]
    (inbox / "a.csv").write_bytes(CONTENT.replace(b"1Z1", b"1Z2"))  # same size
    os.utime(inbox / "a.csv", ns=(dropped[1], dropped[1]))  # and the same mtime
    edited = evaluate_files(place, cursor=first.cursor)

    (request,) = edited.run_requests
    assert request.run_key != first.run_requests[0].run_key
    assert len(json.loads(edited.cursor)["requested"]) == 2


def test_files_being_written_hidden_files_and_symlinks_are_not_seen(place, tmp_path):
    inbox = place["inbox"]
    (inbox / "a.csv.part").write_bytes(CONTENT)
    (inbox / ".a.csv").write_bytes(CONTENT)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(CONTENT)
    os.symlink(outside, inbox / "link.csv")

    result = evaluate_files(place)

    assert not result.run_requests
    assert "No ready .csv file" in result.skip_reason.skip_message

    os.rename(inbox / "a.csv.part", inbox / "a.csv")
    renamed = evaluate_files(place, cursor=result.cursor)

    assert [
        r.run_config["ops"]["queue_status_updates"]["config"]["files"] for r in renamed.run_requests
    ] == [["a.csv"]]


def test_the_cursor_spares_rehashing_an_unchanged_file(place, monkeypatch):
    (place["inbox"] / "a.csv").write_bytes(CONTENT)
    first = evaluate_files(place)

    from gdf_pipeline.outbound import inbox

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(inbox, "scan_file", no_reading)
    second = evaluate_files(place, cursor=first.cursor)

    assert not second.run_requests


def evaluate_table(place):
    context = build_sensor_context(
        instance=place["instance"], resources={"warehouse": place["warehouse"]}
    )
    return shipments_table_sensor(context)


def test_the_table_sensor_runs_only_when_there_is_work_and_no_run_of_its_own_is_going(place):
    assert isinstance(evaluate_table(place), SkipReason)

    with place["warehouse"].get_connection() as conn:
        conn.execute("INSERT INTO oms.shipments (order_number, carrier) VALUES ('SO-1', 'UPS')")
    request = evaluate_table(place)

    assert isinstance(request, RunRequest)
    config = request.run_config["ops"]["queue_status_updates"]["config"]
    assert config == {"files": [], "scan_inbox": False, "read_table": True}

    place["instance"].add_run(
        DagsterRun(
            job_name=post_status_updates_job.name,
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.STARTED,
            tags={"dagster/sensor_name": "shipments_table_sensor"},
        )
    )
    busy = evaluate_table(place)

    assert isinstance(busy, SkipReason) and "still taking" in busy.skip_message


def test_the_table_sensor_counts_due_updates_but_not_those_waiting_for_an_acknowledgement(place):
    now = datetime.now(UTC)
    with place["warehouse"].get_connection() as conn:
        conn.execute(
            "INSERT INTO sync.acknowledgements (gdf_order_id, order_number, status, created_at, "
            "updated_at) VALUES ('g1', 'SO-1', 'PENDING', ?, ?)",
            [now, now],
        )
        conn.execute(
            """
            INSERT INTO sync.status_updates (update_key, gdf_order_id, order_number, status,
                payload, source, state, created_at, updated_at)
            VALUES ('k1', 'g1', 'SO-1', 'CANCELLED', '{}', 'table', 'WAITING_ACK', ?, ?)
            """,
            [now, now],
        )
    assert isinstance(evaluate_table(place), SkipReason)

    with place["warehouse"].get_connection() as conn:
        conn.execute("UPDATE sync.acknowledgements SET status = 'ACKNOWLEDGED'")

    assert isinstance(evaluate_table(place), RunRequest)
