from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event

from shipyard.errors import DataError, PredictionLogError
from shipyard.monitoring.log import (
    MonitoringStore,
    PredictionFailure,
    PredictionLogger,
    PredictionRecord,
)


def record(request_id, label_value=1, model="m"):
    return PredictionRecord(
        request_id, model, 1, {"x": label_value}, {"prediction": label_value}, 1.0
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    else:
        url = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("SHIPYARD_TEST_POSTGRES_URL is not set; set it to a PostgreSQL URL")
    opened = MonitoringStore(url)
    yield opened
    opened.close()


def test_logger_writes_in_background_and_feedback_joins(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    log = PredictionLogger(store, batch_size=7)
    ids = [f"{model}-{index}" for index in range(50)]
    for index, request_id in enumerate(ids):
        log.log(record(request_id, index % 2, model))
    log.flush()
    assert store.count(model) == {"predictions": 50, "labelled": 0}
    assert store.add_feedback(model, [(ids[0], 0), (ids[1], 1), (ids[1], 0)]) == 3
    labelled = store.labelled(model)
    assert [(row["request_id"], row["label"]) for row in labelled] == [(ids[0], 0), (ids[1], 0)]
    assert [row["inputs"]["x"] for row in store.predictions(model, limit=3)] == [0, 1, 0]
    log.close()
    assert log.written == 50
    assert log.dropped == 0


def test_feedback_for_unknown_request_is_refused_whole(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    store.add_predictions([record(f"{model}-a", model=model)])
    with pytest.raises(DataError, match="request id"):
        store.add_feedback(model, [(f"{model}-a", 1), (f"{model}-missing", 0)])
    assert store.count(model)["labelled"] == 0


def test_duplicate_request_ids_are_not_logged_twice(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    store.add_predictions([record(f"{model}-a", 1, model)])
    store.add_predictions([record(f"{model}-a", 0, model), record(f"{model}-b", 0, model)])
    assert store.count(model)["predictions"] == 2


def test_purge_removes_old_rows(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.add_predictions([record("a"), record("b")])
    store.add_feedback("m", [("a", 1)])
    assert store.purge(timedelta(days=1)) == 0
    assert store.purge(timedelta(seconds=-1)) == 3
    assert store.count("m") == {"predictions": 0, "labelled": 0}
    store.close()


def test_acknowledged_feedback_survives_sigkill(tmp_path):
    """A writer killed with SIGKILL loses nothing it acknowledged."""
    database = tmp_path / "kill.db"
    script = textwrap.dedent(f"""
        import sys
        from shipyard.monitoring.log import MonitoringStore, PredictionRecord
        store = MonitoringStore({f"sqlite:///{database}"!r})
        store.add_predictions([PredictionRecord(str(i), "m", 1, {{}}, {{}}, 0.0)
                               for i in range(100000)])
        print("ready", flush=True)
        i = 0
        while True:
            store.add_feedback("m", [(str(i % 100000), i)])
            print(i, flush=True)  # acknowledged only after the commit returned
            i += 1
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    acknowledged = []
    for line in process.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) >= 200:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    store = MonitoringStore(f"sqlite:///{database}")
    labels = {row["request_id"]: row["label"] for row in store.labelled("m")}
    store.close()
    for value in acknowledged:
        assert labels[str(value % 100000)] >= value


def test_prediction_batch_reads_what_predictions_reads(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    # JSON's NaN goes into SQLite's text; PostgreSQL's json type refuses it.
    odd = float("nan") if store.engine.dialect.name == "sqlite" else 1e-300
    store.add_predictions(
        [
            PredictionRecord(
                f"{model}-{index}",
                model,
                1 + index % 2,
                {"x": index, "text": 'é "quoted"', "missing": None, "nested": [1, {"a": 2}]},
                {"prediction": index / 3, "probabilities": {"a": odd}},
                1.0,
            )
            for index in range(25)
        ]
    )
    store.add_predictions([PredictionRecord(f"{model}-other", "other", 1, {}, {}, 1.0)])
    after = store.predictions(model, 0, 1)[0]["id"]
    rows = store.predictions(model, after, 10)
    batch = store.prediction_batch(model, after, 10)
    assert len(batch) == 10
    assert batch.ids == [row["id"] for row in rows]
    assert batch.versions == [row["version"] for row in rows]
    assert [batch.at(position) for position in range(10)] == [row["at"] for row in rows]
    assert repr(batch.inputs) == repr([row["inputs"] for row in rows])
    assert repr(batch.outputs) == repr([row["output"] for row in rows])
    assert len(store.prediction_batch(model, batch.ids[-1] + 1000)) == 0


def test_durable_record_returns_after_the_commit(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    log = PredictionLogger(store)

    async def serve() -> list[int]:
        counts = []
        for index in range(5):
            await log.record([record(f"{model}-{index}", index, model)])
            counts.append(store.count(model)["predictions"])  # no flush: already committed
        return counts

    try:
        assert asyncio.run(serve()) == [1, 2, 3, 4, 5]
    finally:
        log.close()


def _hold_write_lock(path) -> sqlite3.Connection:
    """Take SQLite's write lock from another connection, as a slow concurrent writer would."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_concurrent_records_share_one_commit(tmp_path):
    path = tmp_path / "group.db"
    store = MonitoringStore(f"sqlite:///{path}")
    commits = []
    event.listen(store.engine, "commit", lambda connection: commits.append(1))
    log = PredictionLogger(store, durable=True, commit_timeout=60)

    async def serve() -> None:
        holder = _hold_write_lock(path)
        # Every request queues its rows while the first batch waits for the lock.
        tasks = [
            asyncio.create_task(log.record([record(f"r{index}", index)])) for index in range(40)
        ]
        await asyncio.sleep(0.5)
        holder.rollback()
        holder.close()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(serve())
        assert store.count("m")["predictions"] == 40
        assert len(commits) <= 2  # the first batch, then the 39 (or 40) that queued behind it
    finally:
        log.close()
        store.close()


def test_a_slow_commit_is_refused_in_time_and_written_later(tmp_path):
    path = tmp_path / "slow.db"
    store = MonitoringStore(f"sqlite:///{path}")
    log = PredictionLogger(store, durable=True, commit_timeout=0.3)
    holder = _hold_write_lock(path)
    try:
        with pytest.raises(PredictionLogError, match=r"did not commit within 0.3 s"):
            asyncio.run(log.record([record("late")]))
        holder.rollback()
        log.flush()
        assert store.count("m")["predictions"] == 1  # not acknowledged, yet not lost
    finally:
        holder.close()
        log.close()
        store.close()


def test_a_failed_commit_is_not_acknowledged(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'failed.db'}")
    log = PredictionLogger(store, durable=True, commit_timeout=30)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE shipyard_predictions")
    try:
        with pytest.raises(PredictionLogError, match="could not commit"):
            asyncio.run(log.record([record("lost")]))
        # The writer survives the failure and keeps serving the other tables.
        log.log(PredictionFailure("m", 1, "timeout"))
        log.flush()
        with store.engine.connect() as connection:
            failures = connection.exec_driver_sql(
                "SELECT count(*) FROM shipyard_prediction_failures"
            ).scalar()
        assert failures == 1
    finally:
        log.close()
        store.close()


def test_async_mode_only_queues(store):
    model = f"m-{uuid.uuid4().hex[:8]}"
    log = PredictionLogger(store, durable=False)
    asyncio.run(log.record([record(f"{model}-a", model=model), record(f"{model}-b", model=model)]))
    log.flush()
    assert store.count(model)["predictions"] == 2
    log.close()
