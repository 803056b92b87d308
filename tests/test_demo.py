from __future__ import annotations

from pathlib import Path

from shipyard.demos.adult import DEMO_TEST_ROWS, run_demo


def test_demo_trains_serves_and_answers_real_records(tmp_path):
    messages: list[str] = []
    result = run_demo(
        {
            "registry.home": str(tmp_path / "home"),
            "training.cv_folds": 2,
            "training.n_trials": 3,
            "evaluation.bootstrap_samples": 200,
        },
        report=messages.append,
    )
    auc = result.run.test_metrics["roc_auc"]
    assert auc.value >= 0.92
    assert auc.low <= auc.value <= auc.high
    assert result.run.rows["test"] == 16281
    assert len(result.calls) == len(DEMO_TEST_ROWS)
    for call in result.calls:
        answer = call["answer"]
        assert answer["model"] == "adult-income"
        assert answer["version"] == 1
        assert answer["prediction"] in ("<=50K", ">50K")
        assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-9
    assert sum(call["answer"]["prediction"] == call["actual"] for call in result.calls) >= 2
    assert any("server stopped" in message for message in messages)
    assert any(f"web UI while the demo runs: {result.url}/ui/" in m for m in messages)

    # The fairness verdict on sex and race, and the model card written from the registry.
    verdict = result.fairness_verdict
    assert verdict.startswith(("passed", "BREACHED"))
    assert verdict == result.run.fairness["gate"]["verdict"]
    assert result.as_dict()["fairness_verdict"] == verdict
    markdown = Path(result.cards[0])
    assert markdown.name == "adult-income-v1-model-card.md"
    text = markdown.read_text()
    assert "## Fairness" in text
    assert "Any decision about a real person" in text  # out-of-scope use, from the config
    assert any(message.startswith("model card written to") for message in messages)

    # The demo's own key is revoked, and the user is told where keys live and how to make one,
    # so their first `shipyard serve` creates a key and prints it, as the README says.
    from shipyard.serving import KeyStore
    from shipyard.serving.keys import default_keys_file

    keys_file = default_keys_file(tmp_path / "home")
    assert KeyStore(keys_file).keys() == []
    retired = [message for message in messages if "API key is revoked" in message]
    assert len(retired) == 1
    assert str(keys_file) in retired[0]
    assert "shipyard keys create" in retired[0]
