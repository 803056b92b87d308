"""Feedback labels on served lists, and how the loop turns them into interactions."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from shipyard.config import load_config_dict
from shipyard.errors import DataError
from shipyard.tasks.recommendation.feedback import check_label, feedback_items, list_metrics
from shipyard.tasks.recommendation.loop import extend_interactions


@pytest.mark.parametrize(
    ("label", "items"),
    [
        ({"items": [3, "b"], "event": "purchase"}, [3, "b"]),
        ({"items": [7]}, [7]),
        ([1, 2], [1, 2]),
        ("wine-9", ["wine-9"]),
    ],
)
def test_accepted_label_forms(label, items):
    assert check_label(label) is label
    assert feedback_items(label) == items


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ({"items": []}, "one or more item ids"),
        ({"items": [1], "event": "view"}, "event must be one of click, purchase"),
        ({"item": 1}, "Unknown keys ['item']"),
        ([1, None], "one or more item ids"),
        (True, "one or more item ids"),
    ],
)
def test_refused_labels_say_what_to_send(label, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_label(label)


def test_list_metrics_judge_each_list_by_its_own_label():
    rows = [
        {"output": {"items": [1, 2, 3]}, "label": [3, 9]},
        {"output": {"items": [4, 5, 6]}, "label": {"items": [7], "event": "purchase"}},
        {"output": {"items": [1, 2, 3]}, "label": [1, 2]},
    ]
    metrics = list_metrics(rows, n_samples=200)
    assert metrics["hit_rate"].value == pytest.approx(2 / 3)
    assert metrics["precision"].value == pytest.approx((1 / 3 + 0 + 2 / 3) / 3)


def test_feedback_becomes_interactions_of_the_reference_data(tmp_path):
    source = tmp_path / "events.csv"
    pd.DataFrame(
        {"user": ["u1", "u2"], "item": ["a", "b"], "at": [1_600_000_000, 1_600_000_100]}
    ).to_csv(source, index=False)
    config = load_config_dict(
        {
            "name": "shop",
            "task": "recommendation",
            "data": {"source": str(source), "target": "item"},
            "recommendation": {"user": "user", "item": "item", "time": "at"},
        }
    )
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    learn = [
        {"request_id": "r1", "inputs": {"user": "u3"}, "label": ["c", "a"], "at": moment},
        {"request_id": "r2", "inputs": {"user": "u1"}, "label": {"items": ["b"]}, "at": moment},
    ]
    path = tmp_path / "extended.parquet"
    assert extend_interactions(config, learn, path) == (5, 3)
    extended = pd.read_parquet(path)
    assert extended[["user", "item"]].values.tolist()[2:] == [
        ["u3", "c"],
        ["u3", "a"],
        ["u1", "b"],
    ]
    # A numeric time column gets seconds since the epoch, comparable with the old rows.
    assert extended["at"].tolist()[2:] == [int(moment.timestamp())] * 3

    learn[0]["label"] = {"items": []}
    with pytest.raises(DataError, match="Feedback for request r1"):
        extend_interactions(config, learn, path)
