"""The try-it hook of the task contract, and the Gradio app built from the same form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import ColumnContract, Contract
from shipyard.errors import DataError
from shipyard.manifest import Manifest
from shipyard.registry.store import Registry
from shipyard.tasks.base import Task, task_by_name
from shipyard.tasks.try_it import TryItField, form_from_contract
from shipyard.training.export import frame_to_records
from shipyard.ui.try_it import TryItService

CONTRACT = Contract(
    target=ColumnContract(name="y", type="string"),
    columns=(
        ColumnContract(name="age", type="integer", min=0),
        ColumnContract(name="hours", type="number", nullable=True),
        ColumnContract(name="sex", type="string", categories=("F", "M")),
        ColumnContract(name="member", type="boolean"),
        ColumnContract(name="note", type="text", nullable=True),
    ),
)


def test_the_form_follows_the_contract():
    form = form_from_contract(CONTRACT)
    kinds = {field.name: field.kind for field in form.fields}
    assert kinds == {
        "age": "integer",
        "hours": "number",
        "sex": "choice",
        "member": "boolean",
        "note": "textarea",
    }
    assert [field.required for field in form.fields] == [True, False, True, False, False]
    record = form.record({"age": "41", "hours": "", "sex": "M", "member": "true", "note": "hi"})
    assert record == {"age": 41, "hours": None, "sex": "M", "member": True, "note": "hi"}


def test_every_bad_field_is_named_with_what_it_should_be():
    form = form_from_contract(CONTRACT)
    with pytest.raises(DataError) as caught:
        form.record({"age": "4.5", "hours": "many", "sex": "X", "member": "maybe"})
    message = str(caught.value)
    assert "'age' must be a whole number, got '4.5'" in message
    assert "'hours' must be a number, got 'many'" in message
    assert "'sex' must be one of the listed values" in message
    assert "'member' must be true or false" in message
    with pytest.raises(DataError, match="'age' is required"):
        form.record({"sex": "F"})
    with pytest.raises(DataError, match="finite"):
        TryItField("x", "x", "number").parse("inf")


def test_a_column_the_form_cannot_draw_gives_no_form_and_says_why():
    class Odd:
        name, type, nullable, categories = "photo", "image", False, None

    contract = type("C", (), {"columns": (Odd(),)})()
    form = form_from_contract(contract)  # type: ignore[arg-type]
    assert not form.available
    assert "'photo' is of type 'image'" in form.message
    assert not form_from_contract(None).available


def test_a_task_without_its_own_form_gets_a_safe_default():
    # The base hook, on a task that does not speak "predict": no form, a message, no answer.
    recommendation = task_by_name("recommendation")
    manifest = Manifest.from_document(
        {"task": "recommendation", "target": "", "metric": "ndcg", "model": {"format": "x"}}
    )
    form = Task.try_it(recommendation, manifest, None, None)
    assert not form.available
    assert "offers no try-it form yet" in form.message
    with pytest.raises(DataError, match="offers no try-it form yet"):
        Task.try_it_answer(recommendation, None, manifest, {})


@pytest.fixture(scope="module")
def service(ui_registry: Any) -> Any:
    registry = ui_registry.registry()
    yield TryItService(registry)
    registry.close()


def test_the_tabular_answer_explains_the_raw_output(service: TryItService, ui_registry: Any):
    test = datasets.load("adult").test
    record = frame_to_records(test.drop(columns=["income"]).iloc[[3]])[0]
    values = {key: "" if value is None else str(value) for key, value in record.items()}
    answer = service.answer("adult", 1, values)
    served = service.load("adult", 1).predictor.predict_records([record])[0]
    assert answer.prediction == served["prediction"]
    assert answer.probabilities == pytest.approx(served["probabilities"])
    # Contributions and the base value add up to the log-odds of the positive class.
    from shipyard.evaluation.explain import explain_records

    explained = explain_records(service.load("adult", 1).predictor, [record])[0]
    total = sum(value for _, value in answer.explanation) + explained["base_value"]
    assert total == pytest.approx(explained["raw_output"], abs=1e-6)
    positive = served["probabilities"][">50K"]
    assert total == pytest.approx(np.log(positive / (1 - positive)), abs=1e-6)
    magnitudes = [abs(value) for _, value in answer.explanation]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_the_text_form_is_a_text_box_and_its_answer_names_words(service: TryItService):
    form = service.form("spam", 1)
    assert [field.kind for field in form.fields] == ["textarea"]
    name = form.fields[0].name
    answer = service.answer("spam", 1, {name: "FREE entry! Win cash prize now, txt WIN"})
    assert answer.prediction == "spam"
    assert set(answer.probabilities) == {"ham", "spam"}
    assert answer.explanation  # the words that pushed it towards spam
    assert all(value > 0 for _, value in answer.explanation)


def test_the_recommender_form_picks_a_user(tmp_path: Any):
    from shipyard.config import load_config_dict
    from shipyard.pipeline import train

    raw = task_by_name("recommendation").small_config(tmp_path)
    raw["registry"] = {"home": str(tmp_path / "home")}
    run = train(load_config_dict(raw))
    registry = Registry.from_config(load_config_dict(raw).registry)
    try:
        service = TryItService(registry)
        form = service.form(run.version.name, run.version.version)
        user = form.fields[0]
        assert user.suggestions
        assert user.default == user.suggestions[0]
        answer = service.answer(
            run.version.name, run.version.version, {"user": user.default, "k": "3"}
        )
        assert len(answer.items) == 3
        cold = service.answer(run.version.name, run.version.version, {"user": "nobody", "k": "2"})
        assert "cold start" in cold.notes[0]
    finally:
        registry.close()
