"""A recommender through the closed loop on real X-Wines ratings: register -> serve (real
socket) -> click/purchase feedback -> monitor -> retrain with the ranking gate -> card.

The champion learns from the 800 most active raters' ratings before 2021. Their 2021 ratings
(and those of 50 raters it never saw) play the users' later choices: each user is served two
lists, and the wines they rated 4 or more in 2021 are posted as feedback, the first half on the
first list, the second half on the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import ServingConfig, load_config_dict
from shipyard.monitoring.log import MonitoringStore
from shipyard.pipeline import TrainRun, train
from shipyard.pipeline.documents import card_for_version, report_for_version
from shipyard.pipeline.monitor import monitor
from shipyard.pipeline.retrain import retrain
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server

ACTIVE_USERS = 800
KNOWN_USERS = 150
NEW_USERS = 50
CUTOFF = pd.Timestamp("2021-01-01")


@dataclass
class Served:
    registry: Registry
    run: TrainRun
    users: list[int]
    new_users: list[int]
    feedback: list[list[int]]  # items posted per served list, in serving order


def _later_choices(ratings: pd.DataFrame, users: list[int]) -> dict[int, list[int]]:
    liked = ratings[(ratings["Date"] >= CUTOFF) & (ratings["Rating"] >= 4)]
    liked = liked[liked["UserID"].isin(users)].sort_values("Date", kind="mergesort")
    return {user: group["WineID"].tolist() for user, group in liked.groupby("UserID")}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    folder = tmp_path_factory.mktemp("wines-loop")
    ratings = datasets.load("xwines").train
    counts = ratings["UserID"].value_counts()
    active = counts.index[:ACTIVE_USERS].tolist()
    history = ratings[ratings["UserID"].isin(active) & (ratings["Date"] < CUTOFF)]
    history.reset_index(drop=True).to_parquet(folder / "ratings.parquet")
    config = load_config_dict(
        {
            "name": "wines",
            "task": "recommendation",
            "data": {"source": str(folder / "ratings.parquet"), "target": "Rating"},
            "recommendation": {
                "user": "UserID",
                "item": "WineID",
                "rating": "Rating",
                "time": "Date",
                "feedback": "explicit",
                "factors": 32,
                "iterations": 10,
                "bpr_iterations": 30,
            },
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(folder / "home")},
        }
    )
    registry = Registry.from_config(config.registry)
    run = train(config, registry=registry)

    choices = _later_choices(ratings, active)
    champion = registry.load_predictor(run.version.reference)
    known = [user for user in active if len(choices.get(user, [])) >= 4 and champion.seen(user)][
        :KNOWN_USERS
    ]
    strangers = counts.index[ACTIVE_USERS:].tolist()
    unseen = _later_choices(ratings, strangers)
    new = [user for user in strangers if len(unseen.get(user, [])) >= 4][:NEW_USERS]
    choices.update(unseen)
    users = known + new
    feedback: list[list[int]] = []
    app = build_app(registry, "wines", ServingConfig(auth=False))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for part in (0, 1):  # two rounds: each user's first half of choices, then the second
            labels = []
            for user in users:
                answer = client.get(f"/v1/models/wines/recommend?user={user}&k=10").json()
                assert answer["cold_start"] is (user in new)
                items = choices[user]
                half = items[: len(items) // 2] if part == 0 else items[len(items) // 2 :]
                feedback.append(half)
                label: Any = {"items": half, "event": "purchase"} if user % 2 else half
                labels.append({"request_id": answer["request_id"], "label": label})
            stored = client.post("/v1/models/wines/feedback", json=labels)
            assert stored.status_code == 200, stored.text
            assert stored.json()["stored"] == len(users)

        # Bad feedback is refused with a message that says how to fix it; nothing is stored.
        bad = client.post(
            "/v1/models/wines/feedback",
            json=[{"request_id": labels[0]["request_id"], "label": {"items": []}}],
        )
        assert bad.status_code == 422
        assert "one or more item ids" in bad.json()["message"]
        unknown = client.post(
            "/v1/models/wines/feedback", json={"request_id": "nope", "label": [1]}
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "unknown_request_id"
        card = client.get("/v1/models/wines/card")
        assert card.status_code == 200
        assert "## Cold start" in card.text
    return Served(registry, run, users, new, feedback)


def test_served_lists_are_logged_with_request_ids_and_feedback(served: Served):
    store = MonitoringStore(served.registry.url)
    try:
        counts = store.count("wines")
        labelled = store.labelled("wines")
    finally:
        store.close()
    lists = 2 * len(served.users)
    assert counts == {"predictions": lists, "labelled": lists}
    first = labelled[0]
    assert first["inputs"] == {"user": served.users[0], "k": 10}
    assert len(first["output"]["items"]) == 10
    assert first["output"]["cold_start"] is False
    taken = first["label"]["items"] if isinstance(first["label"], dict) else first["label"]
    assert taken == served.feedback[0]


def test_monitor_reports_popularity_drift_coverage_and_hit_rate(served: Served):
    size = len(served.users)
    result = monitor(served.registry, "wines", window_size=size)
    first = result.windows[0]
    assert first.count == size
    assert first.closed
    rows = {row["column"]: row for row in first.report}
    assert set(rows) == {"recommended_popularity", "cold_start"}
    assert rows["cold_start"]["samples"] == size
    # Cold lists are the popularity list: only known users' items are sketched.
    assert rows["recommended_popularity"]["samples"] == 10 * len(served.users[:KNOWN_USERS])
    signals = result.signals[0]
    assert signals["cold_start_share"] == pytest.approx(NEW_USERS / size)
    assert 0 < signals["coverage"] <= 1
    assert signals["clicked_items"] == sum(len(items) for items in served.feedback[:size])
    assert signals["clicked_popularity_psi"] >= 0
    performance = result.performance[0]
    assert performance is not None
    assert (performance["metric"], performance["labels"]) == ("hit_rate", size)
    assert 0 <= performance["low"] <= performance["value"] <= performance["high"] <= 1
    assert result.as_dict()["windows"][0]["signals"]["coverage"] == signals["coverage"]


def test_retrain_learns_from_feedback_and_gates_on_ndcg_over_users(served: Served):
    registry, run = served.registry, served.run
    result = retrain(registry, "wines", min_gate_rows=30)
    lists = 2 * len(served.users)
    hold_out = int(lists * 0.3)
    learned = served.feedback[: lists - hold_out]
    assert result.gate_rows == hold_out
    assert result.new_rows == sum(len(items) for items in learned)
    challenger = result.challenger.version
    assert challenger.parent_version == run.version.version
    # A user the champion never saw is known to the challenger, from their feedback alone.
    newcomer = served.new_users[0]
    scorer = registry.load_predictor(challenger.reference)
    assert scorer.recommend(newcomer, k=10)["cold_start"] is False
    assert set(scorer.seen(newcomer)) == set(served.feedback[served.users.index(newcomer)])
    gate = result.gate
    assert gate.metric == "ndcg@10"
    assert 30 <= gate.samples <= hold_out  # users with choices the challenger had not seen
    assert gate.low <= gate.improvement <= gate.high
    assert gate.passed == (gate.low > 0)
    assert result.promoted == gate.passed
    assert registry.resolve("wines").version == (challenger.version if result.promoted else 1)
    events = [event for event in registry.events("wines") if event["action"] == "gate"]
    assert events[-1]["detail"]["metric"] == "ndcg@10"


def test_recommender_card_has_ranking_coverage_and_cold_start(served: Served):
    markdown = card_for_version(served.registry, "wines:1").to_markdown()
    for section in (
        "Model details",
        "Training data",
        "Metrics (test split, bootstrap intervals)",
        "Ranking quality against the popularity baseline",
        "Catalogue coverage",
        "Cold start",
        "Model selection",
        "Limitations",
        "Versions and hashes",
    ):
        assert f"## {section}\n" in markdown
    gain = served.run.test_metrics["ndcg_gain@k"]
    assert f"{gain.value:.4f} [{gain.low:.4f}, {gain.high:.4f}]" in markdown
    assert "Interactions: user 'UserID', item 'WineID'" in markdown
    assert "exposure bias" in markdown
    _, page = report_for_version(served.registry, "wines:1")
    html = page.read_text(encoding="utf-8")
    assert "<h2>Ranking quality against the popularity baseline</h2>" in html
    assert "<h2>Model selection</h2>" in html
