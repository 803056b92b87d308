"""The try-it form of a model: which fields a person fills in, and how the answer reads.

Every front door that lets a person try one record (the web UI's try-it page, the Gradio app)
asks the model's task for a :class:`TryItForm` (:meth:`shipyard.tasks.base.Task.try_it`),
draws its fields, turns the submitted text back into a typed record with
:meth:`TryItForm.record`, and asks the task for the :class:`TryItAnswer`
(:meth:`shipyard.tasks.base.Task.try_it_answer`). The front doors never know a task by name.

The default form is built from the data contract (:func:`form_from_contract`): a number box
per numeric column, a list of the allowed values per categorical column, a check box per
boolean column and a text box per text column. A task whose inputs a contract cannot describe
(an image, a user) returns its own form, or :meth:`TryItForm.unavailable` with a message.

Examples
--------
>>> from shipyard.data.contract import ColumnContract, Contract
>>> contract = Contract(
...     target=ColumnContract(name="y", type="string"),
...     columns=(ColumnContract(name="age", type="integer", min=0),
...              ColumnContract(name="sex", type="string", categories=("F", "M"))),
... )
>>> form = form_from_contract(contract)
>>> [(field.name, field.kind, field.choices) for field in form.fields]
[('age', 'integer', ()), ('sex', 'choice', ('F', 'M'))]
>>> form.record({"age": "41", "sex": "F"})
{'age': 41, 'sex': 'F'}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shipyard.errors import DataError

if TYPE_CHECKING:
    from shipyard.data.contract import ColumnContract, Contract

__all__ = [
    "FieldKind",
    "TryItAnswer",
    "TryItField",
    "TryItForm",
    "form_from_contract",
    "predict_answer",
]

FieldKind = Literal["number", "integer", "boolean", "choice", "text", "textarea", "image"]
# Text columns are free text (a message, a review): a large box. Other strings are one line.
_KINDS: dict[str, FieldKind] = {
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "string": "text",
    "text": "textarea",
}
_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no"})


@dataclass(frozen=True)
class TryItField:
    """One input of the try-it form.

    Parameters
    ----------
    name
        The record's key (a contract column, or the task's own input such as ``user``).
    label
        What the person reads beside the field.
    kind
        ``number``, ``integer``, ``boolean``, ``choice`` (one of ``choices``), ``text`` (one
        line), ``textarea`` (free text) or ``image`` (an uploaded PNG or JPEG file, sent as
        its bytes in base64).
    required
        Whether an empty value is refused (else it is sent as missing).
    choices
        The allowed values of a ``choice`` field, in order.
    minimum, maximum
        Limits of a numeric field, from the contract.
    help
        One line on what a valid value looks like.
    suggestions
        Values offered as the person types (a ``text`` field that accepts others too).
    default
        The value the form starts with (text as the form shows it).
    """

    name: str
    label: str
    kind: FieldKind
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    suggestions: tuple[str, ...] = ()
    default: str = ""

    def parse(self, raw: str | None) -> Any:
        """Turn the submitted text into the record's value.

        Raises
        ------
        DataError
            Naming the field, what was sent and what it should be.
        """
        text = (raw or "").strip() if self.kind != "textarea" else (raw or "")
        if self.kind == "boolean":
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE or not lowered:
                return False
            raise DataError(f"'{self.label}' must be true or false, got {raw!r}.")
        if not text.strip():
            if self.required:
                raise DataError(f"'{self.label}' is required: {self.help or 'fill it in'}.")
            return None
        if self.kind in ("number", "integer"):
            return self._number(text)
        if self.kind == "choice" and self.choices and text not in self.choices:
            raise DataError(
                f"'{self.label}' must be one of the listed values ({self.help}), got {text!r}."
            )
        return text

    def _number(self, text: str) -> float | int:
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"'{self.label}' must be a number, got {text!r}.") from None
        if not math.isfinite(value):
            raise DataError(f"'{self.label}' must be a finite number, got {text!r}.")
        if self.kind == "integer":
            if not value.is_integer():
                raise DataError(f"'{self.label}' must be a whole number, got {text!r}.")
            return int(value)
        return value


@dataclass(frozen=True)
class TryItForm:
    """The fields of a model's try-it form, or why it has none.

    ``fields`` is empty when the task offers no form; ``message`` then says why, and what to
    do instead.
    """

    fields: tuple[TryItField, ...]
    message: str = ""
    submit_label: str = "Predict"

    @classmethod
    def unavailable(cls, message: str) -> TryItForm:
        """Return a form with no fields, and the message shown in its place."""
        return cls(fields=(), message=message)

    @property
    def available(self) -> bool:
        """Whether there is anything to fill in."""
        return bool(self.fields)

    def record(self, values: Mapping[str, str | None]) -> dict[str, Any]:
        """Turn submitted text values into a typed record, field by field.

        Raises
        ------
        DataError
            When a field's value is missing or malformed (every problem is listed).
        """
        record: dict[str, Any] = {}
        problems = []
        for item in self.fields:
            try:
                record[item.name] = item.parse(values.get(item.name))
            except DataError as error:
                problems.append(str(error))
        if problems:
            raise DataError(" ".join(problems))
        return record


@dataclass(frozen=True)
class TryItAnswer:
    """What the model answered for one record, ready to show.

    Parameters
    ----------
    prediction
        The answer (a class, a number, or the task's own summary).
    probabilities
        Class probabilities by class label (empty for a regression or a ranking).
    explanation
        ``(input, contribution)`` pairs, largest effect first.
    explanation_title
        What the contributions are (raw-output contributions, token weights, ...).
    items
        Rows of a ranked answer (a recommender's items), each a mapping of column to value.
    notes
        Anything else worth a line (a cold-start user, an unknown category).
    """

    prediction: Any
    probabilities: dict[str, float] = field(default_factory=dict)
    explanation: list[tuple[str, float]] = field(default_factory=list)
    explanation_title: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "prediction": self.prediction,
            "probabilities": self.probabilities,
            "explanation": [[name, value] for name, value in self.explanation],
            "explanation_title": self.explanation_title,
            "items": self.items,
            "notes": self.notes,
        }


def _field_for(column: ColumnContract) -> TryItField | None:
    kind = _KINDS.get(column.type)
    if kind is None:
        return None
    choices: tuple[str, ...] = ()
    if column.categories:
        kind, choices = "choice", tuple(column.categories)
    return TryItField(
        name=column.name,
        label=column.name,
        kind=kind,
        required=not column.nullable and kind != "boolean",
        choices=choices,
        minimum=column.min,
        maximum=column.max,
        help=column.describe(),
        # A valid start: the lower limit of a number, the first allowed value of a category.
        default=_start(kind, column, choices),
    )


def _start(kind: FieldKind, column: ColumnContract, choices: tuple[str, ...]) -> str:
    if kind in ("number", "integer"):
        low = column.min if column.min is not None else 0.0
        return str(int(low)) if kind == "integer" else f"{low:g}"
    if kind == "choice" and column.nullable is False and choices:
        return choices[0]
    return ""


def form_from_contract(
    contract: Contract | None, columns: Sequence[str] | None = None
) -> TryItForm:
    """Build the form of a model whose requests are records of its contract's columns.

    ``columns`` keeps only those columns (a text model's text columns). A contract with a
    column type the form cannot draw gives no form, with a message that says so.
    """
    if contract is None:
        return TryItForm.unavailable(
            "This model has no data contract, so no form can be built for it."
        )
    fields = []
    for column in contract.columns:
        if columns is not None and column.name not in columns:
            continue
        built = _field_for(column)
        if built is None:
            return TryItForm.unavailable(
                f"Column '{column.name}' is of type '{column.type}', which the try-it form "
                "cannot draw; call the model's API instead."
            )
        fields.append(built)
    if not fields:
        return TryItForm.unavailable("The model's contract lists no input column.")
    return TryItForm(tuple(fields))


def predict_answer(answer: Mapping[str, Any]) -> TryItAnswer:
    """Read one answer of a ``predict``-protocol predictor (``prediction``, ``probabilities``).

    A list of ``{"token", "contribution"}`` under ``explanation`` (a text model's top
    tokens) becomes the explanation. An answer without ``prediction`` (a cluster and its
    distance) is shown entry by entry.

    >>> predict_answer({"cluster": 2, "distance": 0.41234}).prediction
    'cluster 2, distance 0.4123'
    """
    probabilities = {
        str(label): float(value) for label, value in answer.get("probabilities", {}).items()
    }
    tokens = answer.get("explanation") or []
    explanation = [
        (str(item["token"]), float(item["contribution"]))
        for item in tokens
        if isinstance(item, Mapping) and "token" in item
    ]
    prediction = answer.get("prediction")
    if prediction is None:
        # Answers of another shape (a cluster and its distance, an anomaly score): each entry.
        prediction = ", ".join(
            f"{key} {_shown(value)}"
            for key, value in answer.items()
            if not isinstance(value, Mapping | list)
        )
    return TryItAnswer(
        prediction=prediction,
        probabilities=dict(sorted(probabilities.items(), key=lambda pair: -pair[1])),
        explanation=explanation,
        explanation_title="Words that pushed the answer most" if explanation else "",
    )


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
