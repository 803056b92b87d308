from __future__ import annotations

from shipyard.demos.spam import run_spam_demo, spam_demo_config


def test_spam_demo_reaches_f1_095_and_serves_real_messages(tmp_path):
    # The demo's own families, portfolio and selection rule, on two folds and without the
    # Optuna trials to stay fast. Shipping word n-grams alone (what prefer_simpler chose
    # once the portfolio was searched) scores F1 0.941 here, so this run checks the choice.
    result = run_spam_demo(
        {
            "registry.home": str(tmp_path / "home"),
            "training.cv_folds": 2,
            "training.n_trials": 4,
            "evaluation.bootstrap_samples": 300,
        }
    )
    f1 = result.run.test_metrics["f1"]
    assert result.run.best == "tfidf_word_char"
    assert f1.value >= 0.95, f"spam F1 {f1}"
    assert f1.low <= f1.value <= f1.high
    assert result.run.rows["test"] == 1115
    assert {call["actual"] for call in result.calls} == {"ham", "spam"}
    for call in result.calls:
        assert call["answer"]["model"] == "spam-detector"
        assert call["answer"]["prediction"] == call["actual"]


def test_spam_demo_search_is_bound_by_trials_not_the_clock():
    # Reproducible on a busy machine: the six settings took 430 s at a load average of 12 to
    # 15 on two cores, so the trial count, not the clock, has to end the search.
    training = spam_demo_config().training
    assert training.n_trials == 6
    assert training.time_budget * training.search_share >= 1.5 * 430
