"""``shipyard export mlflow``: a registered version as an MLflow model, without a pickle.

The model is saved as MLflow's "models from code": its Python model is the file
:mod:`shipyard.deploy.mlflow_model` (copied into the model folder), its one artifact is the
verified bundle, and its config holds the manifest SHA-256 the registry recorded, so loading
it checks every file as ``shipyard serve`` does. Its pip requirements are the pinned packages
the bundle needs (:mod:`shipyard.deploy.requirements`) and shipyard itself.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from shipyard.deploy.requirements import pinned_requirements, serving_extras
from shipyard.errors import ConfigError, require
from shipyard.registry.store import ModelVersion, Registry

__all__ = ["export_mlflow"]


def export_mlflow(registry: Registry, reference: str, folder: Path) -> ModelVersion:
    """Write ``reference`` as an MLflow model into the new folder ``folder``.

    Raises
    ------
    ConfigError
        When ``folder`` already exists.
    MissingDependencyError
        When MLflow is not installed (``pip install 'shipyard[mlflow]'``).
    BundleIntegrityError
        When the bundle differs from its recorded hashes (nothing is written).
    """
    require("mlflow", "mlflow")
    from importlib.util import find_spec

    import mlflow.pyfunc

    from shipyard import __version__

    # The model's code is this file, copied by MLflow; it is not imported here.
    model_code = find_spec("shipyard.deploy.mlflow_model")
    if model_code is None or model_code.origin is None:
        raise ConfigError("shipyard.deploy.mlflow_model is missing from this installation.")

    folder = Path(folder)
    if folder.exists():
        raise ConfigError(f"'{folder}' already exists; MLflow writes a model into a new folder.")
    version = registry.resolve(reference)
    manifest = registry.verify(version.reference)
    formats = [str(manifest.get("model", {}).get("format", ""))]
    requirements = [
        f"{name}=={pinned}"
        for name, pinned in pinned_requirements(serving_extras(formats)).items()
    ]
    with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as scratch:
        # MLflow copies the artifact; copying the verified bundle first leaves the registry's
        # folder untouched whatever MLflow does with it.
        bundle = Path(scratch) / "bundle"
        shutil.copytree(version.bundle_path, bundle)
        mlflow.pyfunc.save_model(
            path=str(folder),
            python_model=model_code.origin,
            artifacts={"bundle": str(bundle)},
            model_config={
                "reference": version.reference,
                "manifest_sha256": version.manifest_sha256,
            },
            pip_requirements=[*requirements, f"shipyard=={__version__}"],
            metadata={"shipyard_reference": version.reference},
        )
    return version
