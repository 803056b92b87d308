"""``shipyard demo spam``, ``pneumonia``, ``recommend``, ``drift``, ``forecast``, ``notes``."""

from __future__ import annotations

from typing import Any

from shipyard.cli import output
from shipyard.errors import ConfigError

__all__ = ["DEMOS", "run_named_demo"]

DEMOS = ("adult", "spam", "pneumonia", "recommend", "drift", "forecast", "notes")


def run_named_demo(which: str, overrides: dict[str, Any], as_json: bool) -> None:
    """Run one of the demos besides ``adult`` and print what happened.

    Raises
    ------
    ConfigError
        When ``which`` names no demo.
    """
    runners = {
        "recommend": _recommend,
        "spam": _spam,
        "pneumonia": _pneumonia,
        "drift": _drift,
        "forecast": _forecast,
        "notes": _notes,
    }
    if which not in runners:
        raise ConfigError(f"No demo named '{which}'; choose one of {', '.join(DEMOS)}.")
    runners[which](overrides, as_json)


def _recommend(overrides: dict[str, Any], as_json: bool) -> None:
    from shipyard.demos.recommend import run_recommend_demo

    # The recommender has no time-budgeted search; the flag is accepted and ignored.
    overrides = {key: value for key, value in overrides.items() if key == "registry.home"}
    result = run_recommend_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    data = result.run.as_dict()
    output.console.print(output.leaderboard_table(data["metric"], data["leaderboard"]))
    output.console.print(
        output.metrics_table(
            f"Test metrics of {data['best']} on {data['rows']['test']} later ratings",
            data["test_metrics"],
        )
    )
    for note in data["notes"]:
        output.console.print(f"Note: {note}")
    output.console.print(f"Registered [bold]{data['reference']}[/bold] in {data['bundle']}")
    answer = result.recommendations
    output.console.print(
        f"\nTop {len(answer['items'])} wines for user {result.user} from {result.url} "
        f"({answer['model']}:{answer['version']}):"
    )
    for rank, entry in enumerate(answer["items"], start=1):
        output.console.print(
            f"  {rank:2d}. {entry['item']} {entry.get('WineName', '')} "
            f"({entry.get('Type', '')}, {entry.get('Country', '')})",
            highlight=False,
        )
    similar = result.similar
    output.console.print(f"Wines similar to {similar['item']} {similar.get('WineName', '')}:")
    for entry in similar["similar"]:
        output.console.print(
            f"  {entry['item']} {entry.get('WineName', '')} (cosine {entry['score']:.3f})",
            highlight=False,
        )
    output.console.print("Server stopped.")


def _spam(overrides: dict[str, Any], as_json: bool) -> None:
    from shipyard.demos.spam import run_spam_demo

    result = run_spam_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    output.print_train_run(result.run.as_dict())
    output.console.print(f"\nAnswers from {result.url} for real held-out messages:")
    for call in result.calls:
        answer = call["answer"]
        probability = answer["probabilities"][answer["prediction"]]
        words = ", ".join(token["token"] for token in answer.get("explanation", []))
        output.console.print(
            f"  {call['text'][:70]!r} -> [bold]{answer['prediction']}[/bold] "
            f"(p={probability:.3f}; actual {call['actual']}; top tokens: {words or 'none'})",
            highlight=False,
        )
    output.console.print("Server stopped.")


def _pneumonia(overrides: dict[str, Any], as_json: bool) -> None:
    from shipyard.demos.pneumonia import run_pneumonia_demo

    result = run_pneumonia_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    data = result.run.as_dict()
    output.print_train_run(data)
    auc = data["test_metrics"].get("roc_auc")
    if auc:
        output.console.print(
            f"\nTest AUC {auc['value']:.3f} ({auc['confidence']:.0%} CI {auc['low']:.3f} to "
            f"{auc['high']:.3f}) on {data['rows']['test']} held-out X-rays (a balanced subset "
            "of PneumoniaMNIST, not its official split).",
            highlight=False,
        )
    output.console.print(f"\nAnswers from {result.url} for real test X-rays:")
    for call in result.calls:
        answer = call["answer"]
        positive = answer["probabilities"].get("1", 0.0)
        output.console.print(
            f"  X-ray {call['image']} (actually {call['actual']}) -> "
            f"[bold]{'pneumonia' if str(answer['prediction']) == '1' else 'normal'}[/bold] "
            f"(p(pneumonia)={positive:.3f}, threshold {answer.get('threshold', 0.5):.3f}); "
            f"saliency: {call['saliency']}",
            highlight=False,
        )
    output.console.print("Server stopped. Not a medical device: a demonstration only.")


def _notes(overrides: dict[str, Any], as_json: bool) -> None:
    from shipyard.demos.notes import run_notes_demo

    # Indexing has no time-budgeted search; the flag is accepted and ignored.
    overrides = {key: value for key, value in overrides.items() if key == "registry.home"}
    result = run_notes_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    data = result.run.as_dict()
    output.console.print(
        output.metrics_table(
            f"Test metrics of the hybrid retriever on {data['rows']['test']} held-out questions",
            data["test_metrics"],
        )
    )
    for note in data["notes"]:
        output.console.print(f"Note: {note}")
    output.console.print(f"Registered [bold]{data['reference']}[/bold] in {data['bundle']}")
    output.console.print(f"\nAnswers from {result.url}:")
    for answer in result.answers:
        output.console.print(f"\n[bold]Q: {answer['question']}[/bold]", highlight=False)
        output.console.print(f"A: {answer['answer']}", highlight=False)
        for citation in answer["citations"]:
            output.console.print(
                f"   [{citation.get('source')}] {citation['file']} - {citation['heading']} "
                f"(characters {citation['start']}-{citation['end']})",
                highlight=False,
            )
    recall = result.recall
    output.console.print(
        f"\nrecall@5 on all {recall['questions']} questions of the question set (the "
        f"registered version's retrieval): [bold]{recall['recall@5']:.3f}[/bold]",
        highlight=False,
    )
    versus = result.comparison
    for name, row in versus.items():
        verdict = (
            "significantly better"
            if row["better"]
            else "significantly worse"
            if row["worse"]
            else "not significantly different"
        )
        output.console.print(
            f"Hybrid vs keyword search alone on the test questions, {name}: "
            f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] ({verdict})",
            highlight=False,
        )
    output.console.print("Server stopped.")


def _drift(overrides: dict[str, Any], as_json: bool) -> None:
    from rich.table import Table

    from shipyard.cli.watch import log_errors_only, print_pass
    from shipyard.demos.drift import PUSHED_STEP, run_drift_demo

    log_errors_only()
    result = run_drift_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    champion = result.champion.as_dict()
    output.console.print(
        output.metrics_table(
            f"{champion['reference']}, trained on 2011: test metrics on "
            f"{champion['rows']['test']} held-out hours of 2011",
            champion["test_metrics"],
        )
    )
    served = iter(result.served)
    for step, watch_pass in result.passes:
        if step == PUSHED_STEP and result.worse is not None and result.worse_gate is not None:
            gate = result.worse_gate
            output.console.print(
                f"\n[bold]A worse challenger[/bold], {result.worse.version.reference}, trained on "
                f"a tiny sample of 2011, gated on the {gate.samples} most recent labelled hours: "
                f"{gate.metric} {gate.challenger:.4f} vs champion {gate.champion:.4f}; "
                f"{gate.reason}. Rejected; pushed to champion by hand anyway:",
                highlight=False,
            )
        phase = next(served)
        answered = ", ".join(f"{ref} {count}" for ref, count in phase["answered_by"].items())
        output.console.print(
            f"\n[bold]{step}[/bold]: served {phase['hours']} hours of 2012 "
            f"({phase['from']} to {phase['to']}), answered by {answered}",
            highlight=False,
        )
        if step == result.passes[0][0] and watch_pass.window is not None:
            output.console.print(_drift_table(Table, watch_pass.window))
        print_pass(watch_pass)
    output.console.print(
        f"\nFinal champion: [bold]{result.final_champion}[/bold]. Drift report of the first "
        f"champion: {result.report_path}",
        highlight=False,
    )
    output.console.print(
        f"Server stopped. Every decision is in the audit log: shipyard models events "
        f"{result.champion.version.name} --home {result.home}",
        highlight=False,
    )


def _drift_table(table_class: Any, window: Any) -> Any:
    """Build a table of the latest window's most drifted columns."""
    table = table_class(
        title=f"Drift in window {window.index} ({window.count} hours) against 2011",
        title_justify="left",
    )
    for column in ("column", "test", "p-value", "PSI", "drifted"):
        table.add_column(column, justify="left" if column == "column" else "right")
    rows = sorted(window.report, key=lambda row: -row["psi"])[:8]
    for row in rows:
        name = "prediction" if row["column"] == "__prediction__" else row["column"]
        verdict = {True: "[bold red]yes[/]", False: "no", None: "too few"}[row["drifted"]]
        table.add_row(name, row["test"], f"{row['p_value']:.2g}", f"{row['psi']:.3f}", verdict)
    return table


def _forecast(overrides: dict[str, Any], as_json: bool) -> None:
    from rich.table import Table

    from shipyard.demos.forecast import run_forecast_demo
    from shipyard.tasks.forecasting.evaluation import backtest_table

    # Forecasting has no time-budgeted search; the flag is accepted and ignored.
    overrides = {key: value for key, value in overrides.items() if key == "registry.home"}
    result = run_forecast_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    section = result.forecasting
    backtest = section["backtest"]
    header, rows = backtest_table(section)
    table = Table(
        title=f"Backtest: {backtest['windows']} rolling origins x {backtest['horizon']} days "
        "(means with 95% bootstrap intervals; last column: MASE minus seasonal naive's)"
    )
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    output.console.print(table)
    verdict = section["verdict"]
    output.console.print(
        f"Chosen: [bold]{section['chosen']}[/bold]; {verdict['verdict']}.", highlight=False
    )
    intervals = section["intervals"]
    output.console.print(
        f"Conformal intervals: nominal {intervals['level']:.0%}, measured "
        f"{intervals['coverage']:.1%} on {int(intervals['points'])} backtest days.",
        highlight=False,
    )
    data = result.run.as_dict()
    output.console.print(f"Registered [bold]{data['reference']}[/bold] in {data['bundle']}")
    answer = result.forecast
    forecast = Table(
        title=f"{answer['horizon']}-day forecast from {result.url} "
        f"({answer['model']}:{answer['version']}), {answer['level']:.0%} intervals"
    )
    for name in ("day", "forecast", "lower", "upper"):
        forecast.add_column(name, justify="right")
    for stamp, point, low, high in zip(
        answer["timestamps"], answer["forecast"], answer["lower"], answer["upper"], strict=True
    ):
        forecast.add_row(stamp[:10], f"{point:,.0f}", f"{low:,.0f}", f"{high:,.0f}")
    output.console.print(forecast)
    output.console.print("Server stopped.")
