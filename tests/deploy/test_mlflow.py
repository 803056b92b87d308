"""``shipyard export mlflow``: models from code, no pickle, answers like ``shipyard serve``."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import pytest
import yaml
from tests.deploy.helpers import held_out_records, live_server, post_json
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import BundleIntegrityError

with warnings.catch_warnings():
    # MLflow warns about its own type hints when its pyfunc module is imported.
    warnings.simplefilter("ignore")
    import mlflow.pyfunc
    import mlflow.pyfunc.scoring_server

# MLflow asks for type hints on predict; the model takes records or frames as they come.
pytestmark = pytest.mark.filterwarnings("ignore:.*type hints:UserWarning")


@pytest.fixture(scope="module")
def exported(registry_copy, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mlflow") / "model"
    result = CliRunner().invoke(
        app,
        [
            *("export", "mlflow", "adult:1", "-o", str(folder)),
            *("--home", str(registry_copy.artifacts.parent)),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return folder


def test_the_model_is_code_and_the_bundle_with_no_pickle(exported: Path) -> None:
    description = yaml.safe_load((exported / "MLmodel").read_text())
    flavor = description["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavor["config"]["reference"] == "adult:1"
    assert (exported / "artifacts" / "bundle" / "manifest.json").is_file()
    assert not [path for path in exported.rglob("*") if path.suffix in {".pkl", ".pickle"}]
    requirements = (exported / "requirements.txt").read_text()
    assert "lightgbm==" in requirements
    assert "shipyard==" in requirements


def test_mlflow_scoring_answers_like_shipyard_on_20_records(registry_copy, exported) -> None:
    import uvicorn

    records = held_out_records(20)
    payload = {"dataframe_records": records}
    with live_server(registry_copy, "adult:1") as url:
        shipyard_answer = post_json(f"{url}/invocations", payload)
    # MLflow's own scoring server (what `mlflow models serve` runs), over a real socket.
    model = mlflow.pyfunc.load_model(str(exported))
    scoring = mlflow.pyfunc.scoring_server.init(model)
    server = uvicorn.Server(uvicorn.Config(scoring, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        mlflow_answer = post_json(f"http://127.0.0.1:{port}/invocations", payload)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert len(shipyard_answer["predictions"]) == 20
    assert mlflow_answer["predictions"] == shipyard_answer["predictions"]


def test_an_altered_bundle_is_refused_when_mlflow_loads_it(exported, tmp_path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(exported, copy)
    model_file = copy / "artifacts" / "bundle" / "model.lgb.txt"
    model_file.write_text(model_file.read_text().replace("Tree=0", "Tree=0 ", 1))
    with pytest.raises(BundleIntegrityError, match=r"model\.lgb\.txt"):
        mlflow.pyfunc.load_model(str(copy))


def test_export_refuses_an_existing_folder(registry_copy, tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("export", "mlflow", "adult:1", "-o", str(tmp_path)),
            *("--home", str(registry_copy.artifacts.parent)),
        ],
    )
    assert result.exit_code != 0
    assert "already exists" in result.output
