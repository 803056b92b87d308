"""Sketches written with the log: exact, merged across writers, and only what was committed."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.monitoring.buckets import SketchBook, SketchLayout, bucket_start
from shipyard.monitoring.log import MonitoringStore, PredictionLogger, PredictionRecord
from shipyard.monitoring.reference import build_reference
from shipyard.monitoring.sketching import RowSketcher
from shipyard.monitoring.timeline import SketchTimeline
from shipyard.training.export import frame_to_records

CLASSES = ["<=50K", ">50K"]
START = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def adult_sketcher():
    adult = datasets.load("adult")
    contract = infer_contract(adult.train, "income")
    outputs = np.column_stack([np.full(len(adult.train), 0.7), np.full(len(adult.train), 0.3)])
    reference = build_reference(adult.train, contract, outputs, "binary")
    records = frame_to_records(adult.test.drop(columns=["income"]).head(1200))
    return RowSketcher(reference, "binary", CLASSES), records


def answer(position):
    share = (position % 10) / 10
    return {
        "prediction": CLASSES[share > 0.5],
        "probabilities": {"<=50K": 1 - share, ">50K": share},
    }


def predictions(name, records, first=0, seconds_apart=1.0):
    return [
        PredictionRecord(
            f"{name}-{first + index}",
            name,
            1,
            record,
            answer(first + index),
            1.0,
            at=START + timedelta(seconds=(first + index) * seconds_apart),
        )
        for index, record in enumerate(records)
    ]


def sketch_of(sketcher, rows):
    """The flat sketch of rows computed directly, as a reader of the log would."""
    sketches = sketcher.empty()
    sketcher.add(sketches, [row.inputs for row in rows], [row.output for row in rows])
    return SketchLayout(sketcher.reference).flatten(sketches)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    found = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
    if not found:
        pytest.skip("SHIPYARD_TEST_POSTGRES_URL is not set; set it to a PostgreSQL URL")
    return found


def test_four_writers_merge_to_the_sketch_of_all_rows(url, adult_sketcher):
    # Four server processes, each with its own connection pool, log book and writer id.
    sketcher, records = adult_sketcher
    name = f"adult-{uuid.uuid4().hex[:8]}"  # a PostgreSQL database outlives the test
    rows = predictions(name, records)  # 1,200 rows a second apart: 21 one-minute buckets
    stores = [MonitoringStore(url) for _ in range(4)]
    loggers = [
        PredictionLogger(
            store, batch_size=37, durable=False, sketches=SketchBook(lambda *_: sketcher)
        )
        for store in stores
    ]
    barrier = threading.Barrier(4)

    def serve(worker):
        barrier.wait()
        for row in rows[worker::4]:  # interleaved: every bucket gets rows from every writer
            loggers[worker].log(row)

    threads = [threading.Thread(target=serve, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for logger in loggers:
        logger.close()
    assert sum(logger.written for logger in loggers) == len(rows)

    timeline = SketchTimeline(stores[0], name, 1, sketcher.reference)
    found = timeline.buckets()
    expected_starts = sorted({bucket_start(row.at, 60) for row in rows})
    assert found.starts == expected_starts
    for start, vector, count in zip(found.starts, found.counts, found.predictions, strict=True):
        inside = [row for row in rows if bucket_start(row.at, 60) == start]
        assert count == len(inside)
        assert vector.tolist() == sketch_of(sketcher, inside).tolist()
    assert found.counts.sum(axis=0).tolist() == sketch_of(sketcher, rows).tolist()
    with stores[0].engine.connect() as connection:
        writers = connection.execute(
            text(
                "SELECT COUNT(DISTINCT writer) FROM shipyard_sketch_buckets WHERE model_name = :n"
            ),
            {"n": name},
        ).scalar()
    assert writers == 4
    whole = timeline.between()
    assert whole.count == len(rows)
    assert whole.buckets == len(expected_starts)
    for store in stores:
        store.close()


def test_a_failed_commit_changes_neither_the_log_nor_the_sketches(tmp_path, adult_sketcher):
    sketcher, records = adult_sketcher
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    with store.engine.begin() as connection:  # the database refuses one request id
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON shipyard_predictions "
            "WHEN NEW.request_id = 'm-5' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    book = SketchBook(lambda *_: sketcher)
    rows = predictions("m", records[:10])
    with pytest.raises(Exception, match="refused"):
        store.add_batch(rows, (), book)
    assert store.count("m")["predictions"] == 0
    assert len(SketchTimeline(store, "m", 1, sketcher.reference).buckets().starts) == 0
    # The writer's memory did not move either: the next batch is counted from zero.
    kept = [row for row in rows if row.request_id != "m-5"]
    store.add_batch(kept, (), book)
    found = SketchTimeline(store, "m", 1, sketcher.reference).buckets()
    assert found.counts.sum(axis=0).tolist() == sketch_of(sketcher, kept).tolist()
    store.close()


def test_request_ids_logged_before_are_sketched_once(tmp_path, adult_sketcher):
    sketcher, records = adult_sketcher
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    book = SketchBook(lambda *_: sketcher)
    rows = predictions("m", records[:20])
    store.add_batch(rows[:15], (), book)
    store.add_batch([*rows[10:], rows[19]], (), book)  # five ids again, one twice in a batch
    assert store.count("m")["predictions"] == 20
    found = SketchTimeline(store, "m", 1, sketcher.reference).buckets()
    assert int(found.predictions.sum()) == 20
    assert found.counts.sum(axis=0).tolist() == sketch_of(sketcher, rows).tolist()
    store.close()


def test_a_writer_reads_back_buckets_it_no_longer_holds(tmp_path, adult_sketcher):
    sketcher, records = adult_sketcher
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    rows = predictions("m", records[:300], seconds_apart=2.0)  # ten buckets
    book = SketchBook(lambda *_: sketcher, keep=1, writer="worker-a")
    store.add_batch(rows[:200], (), book)
    # A late row of the first bucket, then the same writer id after a restart.
    late = PredictionRecord("m-late", "m", 1, records[0], answer(0), 1.0, at=rows[0].at)
    store.add_batch([late], (), book)
    restarted = SketchBook(lambda *_: sketcher, writer="worker-a")
    store.add_batch(rows[200:], (), restarted)
    found = SketchTimeline(store, "m", 1, sketcher.reference).buckets()
    assert found.counts.sum(axis=0).tolist() == sketch_of(sketcher, [*rows, late]).tolist()
    assert int(found.predictions.sum()) == 301
    store.close()


def test_versions_without_a_reference_are_logged_unsketched_and_purge_drops_buckets(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    opened = []

    def open_sketcher(name, version):
        opened.append((name, version))

    book = SketchBook(open_sketcher)
    rows = [
        PredictionRecord(f"r{index}", "m", 1, {"x": index}, {"prediction": 1}, 1.0)
        for index in range(5)
    ]
    store.add_batch(rows[:3], (), book)
    store.add_batch(rows[3:], (), book)
    assert opened == [("m", 1)]  # asked once
    assert store.count("m")["predictions"] == 5
    with store.engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT COUNT(*) FROM shipyard_sketch_buckets").scalar()
            == 0
        )
    store.close()


def test_retention_deletes_old_buckets(tmp_path, adult_sketcher):
    sketcher, records = adult_sketcher
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    old = predictions("m", records[:5])  # logged in March 2026
    recent = [
        PredictionRecord(f"n-{index}", "m", 1, record, answer(index), 1.0)
        for index, record in enumerate(records[5:10])
    ]
    store.add_batch([*old, *recent], (), SketchBook(lambda *_: sketcher))
    store.purge(timedelta(days=1))
    found = SketchTimeline(store, "m", 1, sketcher.reference).buckets()
    assert int(found.predictions.sum()) == 5
    assert found.counts.sum(axis=0).tolist() == sketch_of(sketcher, recent).tolist()
    store.close()


def test_log_time_sketches_clean_values_as_record_by_record_cleaning(tmp_path):
    # The log thread cleans one column at a time and remembers each text's slot; the count
    # windows of old cleaned record by record: the counts must not differ.
    from shipyard.monitoring.columns import column_cleaner
    from shipyard.monitoring.reference import PREDICTION_COLUMN
    from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
    from shipyard.runtime.clean import Cleaner

    cleaner = Cleaner(
        {
            "version": 1,
            "missing_tokens": ["?"],
            "columns": {
                "sex": {"kind": "category", "canonical": {"f": "F", "m": "M"}},
                "age": {"kind": "number"},
            },
        }
    )
    reference = {
        "sex": CategoricalSketch(["F", "M"], [0, 0, 0]),
        "age": NumericSketch([30.0, 50.0], [0, 0, 0]),
        PREDICTION_COLUMN: CategoricalSketch(["0", "1"], [0, 0, 0]),
    }
    fast = RowSketcher(
        reference, "multiclass", ["no", "yes"], clean_column=column_cleaner(cleaner, reference)
    )
    slow = RowSketcher(reference, "multiclass", ["no", "yes"], prepare=cleaner.clean_records)
    sexes = [" f", "?", "M", "X", None, "m ", "F", 3, "f"]
    rows = [
        PredictionRecord(
            f"r{index}",
            "m",
            1,
            {"sex": sexes[index % len(sexes)], "age": [25, None, 61.5, "?"][index % 4]},
            {"prediction": ["no", "yes"][index % 3 == 0]},
            1.0,
            at=START,
        )
        for index in range(200)
    ]
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    book = SketchBook(lambda *_: fast)
    for start in range(0, 200, 23):  # later batches reuse the remembered texts
        store.add_batch(rows[start : start + 23], (), book)
    found = SketchTimeline(store, "m", 1, reference).buckets()
    assert found.counts.sum(axis=0).tolist() == sketch_of(slow, rows).tolist()
    store.close()
