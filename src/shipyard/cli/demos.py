"""``shipyard demo spam`` and ``shipyard demo recommend``: run a demo and print its answers."""

from __future__ import annotations

from typing import Any

from shipyard.cli import output
from shipyard.errors import ConfigError

__all__ = ["DEMOS", "run_named_demo"]

DEMOS = ("adult", "spam", "recommend")


def run_named_demo(which: str, overrides: dict[str, Any], as_json: bool) -> None:
    """Run the ``spam`` or ``recommend`` demo and print what the server answered.

    Raises
    ------
    ConfigError
        When ``which`` names no demo.
    """
    if which == "recommend":
        _recommend(overrides, as_json)
    elif which == "spam":
        _spam(overrides, as_json)
    else:
        raise ConfigError(f"No demo named '{which}'; choose one of {', '.join(DEMOS)}.")


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
