"""``shipyard ask``: put one question, or a file of them, to a registered notes version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    HomeOption,
    JsonOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)

__all__ = ["register"]


@handles_errors
def ask(
    context: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    question: Annotated[str | None, typer.Argument(help="One question.")] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--file", help="A CSV, Parquet or JSON-lines file with a question column."),
    ] = None,
    column: Annotated[str, typer.Option(help="The file's question column.")] = "question",
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the answers as JSON lines.")
    ] = None,
    k: Annotated[int | None, typer.Option(help="Chunks retrieved per question.")] = None,
    home: HomeOption = None,
    registry_url: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer questions from a notes model (task: retrieval_qa), with citations."""
    from shipyard.errors import ConfigError
    from shipyard.pipeline.ask import answer_questions

    if (question is None) == (questions is None):
        raise ConfigError("Give one QUESTION, or --file with a question column, not both.")
    registry = _open_registry(None, home, registry_url)
    texts = [question] if question is not None else _read_questions(questions, column)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.error_console,
    ) as progress:
        task_id = progress.add_task("answering", total=len(texts))
        answers = list(
            answer_questions(
                registry, reference, texts, k, progress=lambda n: progress.advance(task_id, n)
            )
        )
    if out is not None:
        out.write_bytes(b"".join(orjson.dumps(answer) + b"\n" for answer in answers))
        output.console.print(f"Wrote {len(answers)} answers to {out}")
        return
    if as_json:
        output.print_json(answers if questions is not None else answers[0])
        return
    for answer in answers:
        output.console.print(f"\n[bold]Q: {answer['question']}[/bold]", highlight=False)
        output.console.print(f"A: {answer['answer']}", highlight=False)
        for citation in answer["citations"]:
            output.console.print(
                f"   [{citation['source']}] {citation['file']} - {citation['heading']} "
                f"(characters {citation['start']}-{citation['end']})",
                highlight=False,
            )


def _read_questions(path: Path | None, column: str) -> list[str]:
    from shipyard.data.sources import read_table
    from shipyard.errors import DataError

    frame = read_table(str(path))
    if column not in frame.columns:
        raise DataError(
            f"'{path}' has no column '{column}' (columns: {', '.join(map(str, frame.columns))});"
            " pass --column."
        )
    return [str(text) for text in frame[column].tolist()]


def register(app: typer.Typer) -> None:
    """Add ``shipyard ask`` to the CLI."""
    app.command(name="ask")(ask)
