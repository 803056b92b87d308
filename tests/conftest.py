"""Shared fixtures: the bundled Adult data and small, fast pipeline configs built on it."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from shipyard import datasets
from shipyard.config import PipelineConfig, apply_overrides, load_config_dict

# Hypothesis: no per-example deadline (the first example pays for imports). The default
# profile keeps the suite fast; run `pytest --hypothesis-profile=thorough` to search harder.
settings.register_profile(
    "shipyard", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", parent=settings.get_profile("shipyard"), max_examples=1000)
settings.load_profile("shipyard")

ADULT_SAMPLE_ROWS = 3000
POSTGRES_VARIABLE = "SHIPYARD_TEST_POSTGRES_URL"
_POSTGRES_RUN = pytest.StashKey[tuple[str, str]]()  # the URL as given, and the run's schema


def pytest_configure(config: pytest.Config) -> None:
    """Give this run a PostgreSQL schema of its own (tests read the URL after this hook).

    Tables left in the database by another run, concurrent or of older code, would be refused
    by the stores' schema check (or would mix with this run's rows); a fresh schema named in
    the URL's search_path avoids both. It is dropped when the run ends.
    """
    url = os.environ.get(POSTGRES_VARIABLE)
    if not url or "search_path" in url:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    schema = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        return  # no server: the PostgreSQL tests report it themselves
    finally:
        engine.dispose()
    config.stash[_POSTGRES_RUN] = (url, schema)
    separator = "&" if "?" in url else "?"
    os.environ[POSTGRES_VARIABLE] = f"{url}{separator}options=-csearch_path%3D{schema}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop the run's PostgreSQL schema."""
    run = config.stash.get(_POSTGRES_RUN, None)
    if run is None:
        return
    from sqlalchemy import create_engine, text

    url, schema = run
    os.environ[POSTGRES_VARIABLE] = url
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def adult() -> datasets.Dataset:
    """The bundled UCI Adult dataset (loaded once per session)."""
    return datasets.load("adult")


@pytest.fixture
def small_adult_config(adult: datasets.Dataset, tmp_path: Path) -> Callable[..., PipelineConfig]:
    """Build a fast Adult pipeline config whose data and registry live under ``tmp_path``.

    Call it with dotted-key overrides, e.g. ``small_adult_config(**{"training.models":
    ["linear"]})``. The data is a seeded 3,000-row sample written to ``adult.csv``.
    """
    source = tmp_path / "adult.csv"
    adult.train.sample(n=ADULT_SAMPLE_ROWS, random_state=0).to_csv(source, index=False)

    def build(**overrides: Any) -> PipelineConfig:
        raw = {
            "name": "adult",
            "sensitive": ["sex", "race"],
            "data": {"source": str(source), "target": "income"},
            # The trial count ends the search; the generous budget keeps the clock of a loaded
            # machine from cutting fits short, so the same seed gives the same model.
            "training": {
                "cv_folds": 3,
                "models": ["linear", "lightgbm"],
                "n_trials": 4,
                "time_budget": 900,
            },
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(tmp_path / "home")},
        }
        return load_config_dict(apply_overrides(raw, overrides))

    return build


@dataclass
class LoopModels:
    """A registry for the closed loop: a champion trained on young people only (version 1)
    and a version trained on shuffled labels (version 2, not promoted), plus traffic from
    older people that version 1's contract accepts."""

    home: Path
    traffic: Any  # older people, with their true income

    def registry(self, into: Path) -> Any:
        """A private copy of the registry (tests move its aliases)."""
        import shutil

        from shipyard.registry.store import Registry

        shutil.copytree(self.home, into)
        return Registry(f"sqlite:///{into / 'registry.db'}", into / "artifacts")


LOOP_MONITORING = {
    "window_size": 300,
    "drift_refresh_seconds": 0,
    "alerts": {"rules": [{"kind": "drift", "threshold": 0.25}], "repeat_minutes": 60},
    "retraining": {
        "drifted_columns": 1,
        "metric_drop": None,
        "min_gate_rows": 100,
        "gate_share": 0.3,
        "cooldown_minutes": 0,
    },
    "canary": {"share": 0.5, "requests": 100, "min_labels": 30},
    "rollback": {"min_labels": 50, "observe_requests": 100},
}


@pytest.fixture(scope="session")
def loop_models(tmp_path_factory: pytest.TempPathFactory) -> LoopModels:
    """Train the two versions once per session (small data, one trial, no report)."""
    from shipyard.pipeline import train
    from shipyard.registry.store import Registry
    from shipyard.training.export import frame_to_records

    folder = tmp_path_factory.mktemp("loop")
    adult = datasets.load("adult")
    young = adult.train[adult.train["age"] < 30].sample(1500, random_state=0)
    shuffled = young.assign(income=young["income"].sample(frac=1.0, random_state=1).to_numpy())
    home = folder / "home"
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    for data in (young, shuffled):
        source = folder / f"adult-{len(list(folder.glob('*.csv')))}.csv"
        data.to_csv(source, index=False)
        raw = {
            "name": "adult",
            # Log loss sees what young-only training gets wrong about older people: how
            # often they earn more (the ranking, ROC AUC, is much the same).
            "metric": "log_loss",
            "data": {"source": str(source), "target": "income", "drop": ["fnlwgt"]},
            # One thread: LightGBM's OpenMP threads crawl when the cores are busy.
            "training": {"cv_folds": 2, "models": ["lightgbm"], "n_trials": 1, "model_threads": 1},
            "evaluation": {"bootstrap_samples": 100, "report": False},
            "monitoring": LOOP_MONITORING,
            "registry": {"home": str(home)},
        }
        train(load_config_dict(raw), registry=registry)
    validator = registry.load_predictor("adult:1").validator
    older = adult.test[adult.test["age"] >= 40]
    records = frame_to_records(older.drop(columns=["income"]))
    traffic = older[[not validator.problems(record) for record in records]]
    registry.close()
    return LoopModels(home, traffic.reset_index(drop=True))


@pytest.fixture
def webhook():
    """A real HTTP server on loopback that records the JSON bodies posted to it."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@dataclass
class ScriptedWebhook:
    """A webhook on loopback that answers each POST with the next status of ``statuses``
    (the last one again once they run out), and records when each POST came and its body."""

    statuses: list[int]
    url: str = ""
    times: list[float] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> int:
        position = min(len(self.times), len(self.statuses)) - 1
        return self.statuses[position]

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """The bodies of the POSTs answered with a 2xx."""
        return [
            body
            for position, body in enumerate(self.bodies)
            if 200 <= self.statuses[min(position, len(self.statuses) - 1)] < 300
        ]


@pytest.fixture
def scripted_webhook() -> Iterator[Callable[..., ScriptedWebhook]]:
    """Start webhooks that answer a script of statuses: ``scripted_webhook(503, 204)``."""
    servers = []

    def start(*statuses: int) -> ScriptedWebhook:
        hook = ScriptedWebhook(list(statuses))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.times.append(time.monotonic())
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.answer())
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=secret"
        return hook

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class AdultModel:
    """A small Adult model registered as ``adult:1`` (with its report and model card)."""

    home: Path

    def registry(self) -> Any:
        """Open the registry that holds it (close it after use)."""
        from shipyard.registry.store import Registry

        return Registry(f"sqlite:///{self.home / 'registry.db'}", self.home / "artifacts")


@pytest.fixture(scope="session")
def adult_model(tmp_path_factory: pytest.TempPathFactory) -> AdultModel:
    """Train one small LightGBM Adult model per session: its cleaning groups rare countries."""
    from shipyard.pipeline import train

    folder = tmp_path_factory.mktemp("adult-model")
    source = folder / "adult.csv"
    datasets.load("adult").train.sample(n=1500, random_state=0).to_csv(source, index=False)
    home = folder / "home"
    raw = {
        "name": "adult",
        "data": {"source": str(source), "target": "income"},
        "training": {"cv_folds": 2, "models": ["lightgbm"], "n_trials": 1, "model_threads": 1},
        "evaluation": {"bootstrap_samples": 100},
        "registry": {"home": str(home)},
    }
    model = AdultModel(home)
    registry = model.registry()
    train(load_config_dict(raw), registry=registry)
    registry.close()
    return model
