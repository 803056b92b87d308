"""The MLflow model code of ``shipyard export mlflow``: MLflow's "models from code".

MLflow copies this file into the exported model and runs it when the model is loaded
(``mlflow.pyfunc.load_model``, ``mlflow models serve``): no pickled Python object is written
or read. :class:`ShipyardModel` loads the shipyard bundle the export copied as an artifact,
after checking every file against the manifest's hashes and the manifest against the SHA-256
the registry recorded (kept in the model's config), and answers as ``shipyard serve``'s
``/invocations`` does: one label (or value) per record.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # MLflow warns about type hints of its own modules when they are first imported.
    warnings.simplefilter("ignore", UserWarning)
    import mlflow
    from mlflow.pyfunc.model import PythonModel

__all__ = ["ShipyardModel"]


class ShipyardModel(PythonModel):
    """An MLflow pyfunc model over a verified shipyard bundle."""

    def load_context(self, context: Any) -> None:
        """Verify the bundle and load its predictor (raises when a file was altered)."""
        from shipyard.registry.bundle import load_predictor

        config = context.model_config
        self.predictor = load_predictor(
            Path(context.artifacts["bundle"]), config["manifest_sha256"]
        )

    # No type hints on the input: MLflow would take them as a signature and convert the input.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Return one prediction per record of a DataFrame or a list of records."""
        from shipyard.training.export import frame_to_records

        records = (
            frame_to_records(model_input) if hasattr(model_input, "columns") else list(model_input)
        )
        return [answer["prediction"] for answer in self.predictor.predict_records(records)]


mlflow.models.set_model(ShipyardModel())
