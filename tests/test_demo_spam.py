from __future__ import annotations

from shipyard.demos.spam import run_spam_demo


def test_spam_demo_reaches_f1_095_and_serves_real_messages(tmp_path):
    # One candidate, one setting and two folds keep the test fast; the demo searches more.
    result = run_spam_demo(
        {
            "registry.home": str(tmp_path / "home"),
            "training.cv_folds": 2,
            "training.n_trials": 1,
            "text.candidates": ["tfidf_word_char"],
            "text.regularization": [100.0],
            "evaluation.bootstrap_samples": 300,
        }
    )
    f1 = result.run.test_metrics["f1"]
    assert f1.value >= 0.95, f"spam F1 {f1}"
    assert f1.low <= f1.value <= f1.high
    assert result.run.rows["test"] == 1115
    assert {call["actual"] for call in result.calls} == {"ham", "spam"}
    for call in result.calls:
        assert call["answer"]["model"] == "spam-detector"
        assert call["answer"]["prediction"] == call["actual"]
