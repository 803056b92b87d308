from __future__ import annotations

import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.monitoring.log import MonitoringStore, PredictionRecord
from shipyard.monitoring.reference import build_reference
from shipyard.monitoring.windows import DriftMonitor
from shipyard.training.export import frame_to_records


@pytest.fixture(scope="module")
def adult_reference():
    adult = datasets.load("adult")
    contract = infer_contract(adult.train, "income")
    outputs = np.column_stack([np.full(len(adult.train), 0.75), np.full(len(adult.train), 0.25)])
    return adult, contract, build_reference(adult.train, contract, outputs, "binary")


def log_rows(store, frame, start, version=1, name="adult"):
    records = frame_to_records(frame.drop(columns=["income"]))
    store.add_predictions(
        [
            PredictionRecord(
                f"{name}-r{start + index}",
                name,
                version,
                record,
                {"prediction": "<=50K", "probabilities": {"<=50K": 0.75, ">50K": 0.25}},
                1.0,
            )
            for index, record in enumerate(records)
        ]
    )


def test_windows_close_report_drift_and_resume_incrementally(tmp_path, adult_reference):
    adult, _, reference = adult_reference
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    monitor = DriftMonitor(
        store, "adult", 1, reference, "binary", ["<=50K", ">50K"], window_size=1000
    )
    steady = adult.test.sample(1000, random_state=0)
    older = adult.test[adult.test["age"] >= 50].sample(1500, random_state=0)
    log_rows(store, steady, 0)
    log_rows(store, older, 1000)
    log_rows(store, adult.test.head(10), 5000, version=2)  # another version: skipped

    windows = monitor.update(batch_size=700)
    assert [(window.count, window.closed) for window in windows] == [
        (1000, True),
        (1000, True),
        (500, False),
    ]
    first, second, open_window = windows
    assert first.drifted == []
    assert "age" in second.drifted
    assert "sex" not in second.drifted
    assert open_window.last_log_id == 2510  # read past the other version's rows

    # Nothing new: only the open window comes back, unchanged.
    again = DriftMonitor(
        store, "adult", 1, reference, "binary", ["<=50K", ">50K"], window_size=1000
    ).update()
    assert [(window.count, window.last_log_id) for window in again] == [(500, 2510)]

    log_rows(store, older.head(600), 9000)
    resumed = monitor.update()
    assert [(window.count, window.closed) for window in resumed] == [(1000, True), (100, False)]
    assert [window.count for window in monitor.windows()] == [1000, 1000, 1000, 100]
    store.close()


def test_report_draws_drift_over_windows(tmp_path, adult_reference):
    from shipyard.monitoring.report import render_report

    adult, _, reference = adult_reference
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    monitor = DriftMonitor(
        store, "adult", 1, reference, "binary", ["<=50K", ">50K"], window_size=500
    )
    log_rows(store, adult.test.sample(500, random_state=1), 0)
    log_rows(store, adult.test[adult.test["age"] >= 50].sample(500, random_state=1), 500)
    windows = monitor.update()
    page = render_report(
        "adult",
        1,
        windows,
        performance=[{"metric": "roc_auc", "value": 0.9, "low": 0.88, "high": 0.92}, None, None],
    )
    store.close()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert page.count("<polyline") >= 2  # at least one drawn line per drift chart
    assert "drifted: " in page
    assert "<td>age</td>" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_updaters_count_each_prediction_once(tmp_path, adult_reference, database):
    # A server refreshing its gauges and `shipyard watch` may advance the same windows at once.
    import os
    import threading
    import uuid

    adult, _, reference = adult_reference
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        url = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
        if url is None:
            pytest.skip("set SHIPYARD_TEST_POSTGRES_URL to run PostgreSQL tests")
    name = f"adult-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database outlives the test
    store = MonitoringStore(url)
    log_rows(store, adult.test.sample(2500, random_state=1), 0, name=name)
    monitors = [
        DriftMonitor(store, name, 1, reference, "binary", ["<=50K", ">50K"], window_size=1000)
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(monitors))

    def advance(monitor):
        barrier.wait()
        monitor.update(batch_size=300)

    threads = [threading.Thread(target=advance, args=(monitor,)) for monitor in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [window.count for window in monitors[0].windows()] == [1000, 1000, 500]
    store.close()


def test_column_cleaning_gives_the_windows_of_record_cleaning(tmp_path, adult_reference):
    from shipyard.data.clean import fit_cleaner
    from shipyard.monitoring.columns import column_cleaner
    from shipyard.runtime.clean import Cleaner

    adult, _, reference = adult_reference
    spec, _ = fit_cleaner(adult.train, "income", clip_quantile=0.01)
    cleaner = Cleaner(spec)
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    rows = adult.test.sample(1200, random_state=1).reset_index(drop=True)
    rows.loc[::7, "workclass"] = " ?"  # missing tokens, spacing, clipped and text numbers
    rows["age"] = rows["age"].astype(object)
    rows.loc[::5, "age"] = 120
    rows.loc[::11, "age"] = "35"
    for name in ("by-column", "by-record"):
        log_rows(store, rows, 0, name=name)
    clean_column = column_cleaner(cleaner, reference)
    assert clean_column is not None
    windows = {}
    for name, options in (
        ("by-column", {"prepare": cleaner.clean_records, "clean_column": clean_column}),
        ("by-record", {"prepare": cleaner.clean_records}),
    ):
        monitor = DriftMonitor(
            store, name, 1, reference, "binary", ["<=50K", ">50K"], window_size=500, **options
        )
        monitor.update(batch_size=333)
        windows[name] = [(window.count, window.report) for window in monitor.windows()]
    assert windows["by-column"] == windows["by-record"]
    assert [count for count, _ in windows["by-column"]] == [500, 500, 200]
    store.close()
