"""A Gradio front door for one version, built from the same try-it form as the web UI.

``shipyard gradio NAME`` draws one Gradio input per field of the version's try-it form
(:meth:`~shipyard.tasks.base.Task.try_it`) and answers through the same predictor and the
same task hook as the UI's try-it page, so both show the same answer. Gradio is an extra
(``pip install 'shipyard[gradio]'``), imported only here. Its usage analytics are turned off
before it is imported: the app makes no request beyond its own server.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from shipyard.errors import DataError, require
from shipyard.registry.store import Registry
from shipyard.tasks.try_it import TryItAnswer, TryItField, TryItForm
from shipyard.ui.try_it import TryItService

__all__ = ["answer_outputs", "build_gradio_app", "field_values"]


def _gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return require("gradio", "gradio")


def _component(gr: Any, field: TryItField) -> Any:
    """Return the Gradio input of one form field, labelled and started at the field's default."""
    info = field.help or None
    if field.kind == "boolean":
        return gr.Checkbox(label=field.label, info=info)
    if field.kind == "image":
        return gr.Image(label=field.label, type="filepath", sources=["upload"])
    if field.kind == "choice":
        choices = list(field.choices) if field.required else ["", *field.choices]
        return gr.Dropdown(
            choices, value=field.default or choices[0], label=field.label, info=info
        )
    if field.kind in ("number", "integer"):
        return gr.Number(
            value=float(field.default) if field.default else None,
            label=field.label,
            info=info,
            minimum=field.minimum,
            maximum=field.maximum,
            precision=0 if field.kind == "integer" else None,
        )
    if field.suggestions:
        return gr.Dropdown(
            list(field.suggestions),
            value=field.default or None,
            label=field.label,
            info=info,
            allow_custom_value=True,
        )
    return gr.Textbox(
        value=field.default,
        label=field.label,
        info=info,
        lines=5 if field.kind == "textarea" else 1,
    )


def field_values(form: TryItForm, inputs: tuple[Any, ...]) -> dict[str, str]:
    """Turn Gradio's input values into the form's text values (what a browser would post).

    >>> form = TryItForm((TryItField("age", "age", "integer"), TryItField("ok", "ok", "boolean")))
    >>> field_values(form, (41.0, True))
    {'age': '41', 'ok': 'true'}
    """
    values = {}
    for field, value in zip(form.fields, inputs, strict=True):
        if value is None:
            values[field.name] = ""
        elif field.kind == "image":
            values[field.name] = base64.b64encode(Path(value).read_bytes()).decode("ascii")
        elif isinstance(value, bool):
            values[field.name] = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            values[field.name] = str(int(value))
        else:
            values[field.name] = str(value)
    return values


def answer_outputs(answer: TryItAnswer) -> tuple[str, dict[str, float], list[list[Any]], str]:
    """Return the outputs: prediction, probabilities, explanation rows, ranked items."""
    explanation = [[name, round(value, 6)] for name, value in answer.explanation[:15]]
    items = "\n".join(
        " · ".join(f"{key}: {value}" for key, value in item.items()) for item in answer.items
    )
    lines = [str(answer.prediction), *answer.notes]
    return "\n".join(lines), answer.probabilities, explanation, items


def build_gradio_app(registry: Registry, name: str, version: int) -> Any:
    """Build the Gradio app of ``name:version`` (call ``.launch()`` to serve it).

    Raises
    ------
    MissingDependencyError
        When Gradio is not installed (``pip install 'shipyard[gradio]'``).
    DataError
        When the version's task offers no try-it form.
    """
    gr = _gradio()
    service = TryItService(registry)
    loaded = service.load(name, version)
    form = loaded.form
    if not form.available:
        raise DataError(f"{loaded.reference}: {form.message}")

    def predict(*inputs: Any) -> tuple[str, dict[str, float], list[list[Any]], str]:
        try:
            answer = service.answer(name, version, field_values(form, inputs))
        except DataError as error:
            raise gr.Error(str(error)) from None
        return answer_outputs(answer)

    return gr.Interface(
        fn=predict,
        inputs=[_component(gr, field) for field in form.fields],
        outputs=[
            gr.Textbox(label="Prediction"),
            gr.Label(label="Probabilities"),
            gr.Dataframe(headers=["input", "contribution"], label="Explanation"),
            gr.Textbox(label="Items", lines=6),
        ],
        title=f"{loaded.reference} ({loaded.task.name})",
        description="One request through the served predictor; the same answer as the "
        "shipyard web UI's try-it page.",
        submit_btn=form.submit_label,
        flagging_mode="never",
    )
