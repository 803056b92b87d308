"""The Gradio front door: built from the same try-it form, answering as the UI does."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from shipyard.registry.store import Registry
from shipyard.ui.try_it import TryItService

pytest.importorskip("gradio")
# Gradio's app objects leave event loops and sockets for the garbage collector to close.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture
def registry(ui_registry: Any) -> Any:
    opened: Registry = ui_registry.registry()
    yield opened
    opened.close()


def test_the_gradio_app_answers_as_the_ui_does(registry: Registry):
    from shipyard.ui.gradio_app import build_gradio_app, field_values

    service = TryItService(registry)
    try:
        app = build_gradio_app(registry, "spam", 1)
        text = "WINNER! claim your free prize, call now"
        prediction, probabilities, explanation, _ = app.fn(text)
        expected = service.answer("spam", 1, field_values(service.form("spam", 1), (text,)))
        assert prediction.splitlines()[0] == expected.prediction
        assert probabilities == pytest.approx(expected.probabilities)
        assert [row[0] for row in explanation] == [name for name, _ in expected.explanation]
        # Its inputs are drawn from the form: one text box here.
        assert [type(block).__name__ for block in app.input_components] == ["Textbox"]
    finally:
        gc.collect()  # Gradio's leftover event loops are reported here, where they are ignored
