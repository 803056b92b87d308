from __future__ import annotations

from typer.testing import CliRunner

from shipyard.cli.commands import app
from shipyard.demos.recommend import run_recommend_demo


def test_recommend_demo_beats_popularity_and_serves_named_wines(tmp_path):
    result = run_recommend_demo(
        {"registry.home": str(tmp_path / "home"), "evaluation.bootstrap_samples": 300}
    )
    gain = result.run.test_metrics["ndcg_gain@k"]
    assert gain.low > 0, f"NDCG@10 gain over popularity {gain} does not exclude zero"
    items = result.recommendations["items"]
    assert len(items) == 10
    assert all(isinstance(entry["item"], int) and entry["WineName"] for entry in items)
    assert result.recommendations["cold_start"] is False
    assert len(result.similar["similar"]) == 5


def test_unknown_demo_name_is_a_one_line_error(tmp_path):
    outcome = CliRunner().invoke(app, ["demo", "wines", "--home", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "No demo named 'wines'" in outcome.output
