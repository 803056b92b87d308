"""Shared pieces of the stream tests: real brokers, the Adult model, and the HTTP answers."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard import datasets
from shipyard.registry.store import Registry

NATS_URL = os.environ.get("SHIPYARD_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("SHIPYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENTS = 10_000


def _answers(host_port: tuple[str, int]) -> bool:
    try:
        socket.create_connection(host_port, timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server with JetStream the tests publish to (``.ci/run`` starts it)."""
    if not _answers(("127.0.0.1", 4222)) and "127.0.0.1:4222" in NATS_URL:
        pytest.fail(f"No NATS server answers at {NATS_URL}; start nats-server -js.")
    return NATS_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server the tests use (``.ci/run`` starts it)."""
    if not _answers(("127.0.0.1", 6379)) and "127.0.0.1:6379" in REDIS_URL:
        pytest.fail(f"No Redis server answers at {REDIS_URL}; start redis-server.")
    return REDIS_URL


@dataclass
class AdultEvents:
    """Valid Adult records, the HTTP path's answer to each, and the model's registry home."""

    home: Path
    records: list[dict[str, Any]]
    http_answers: list[dict[str, Any]]

    def registry(self, into: Path) -> Registry:
        """A private copy of the registry (the stream logs its answers there)."""
        shutil.copytree(self.home, into)
        return Registry(f"sqlite:///{into / 'registry.db'}", into / "artifacts")


def _valid_records(predictor: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the records the model's contract accepts (after its cleaning)."""
    from shipyard.runtime.validate import RecordValidationError

    while True:
        try:
            predictor.score_records(records)
            return records
        except RecordValidationError as error:
            bad = {violation["record"] for violation in error.violations}
            records = [record for index, record in enumerate(records) if index not in bad]


@pytest.fixture(scope="session")
def adult_events(adult_model: Any) -> AdultEvents:
    """10,000 valid Adult records and their answers from ``POST /v1/models/adult/predict``."""
    from shipyard.config import ServingConfig
    from shipyard.serving import create_app, load_served_model, running_server
    from shipyard.training.export import frame_to_records

    test = datasets.load("adult").test.drop(columns=["income"])
    registry = adult_model.registry()
    served = load_served_model(registry, "adult")
    pool = _valid_records(served.predictor, frame_to_records(test))
    records = (pool * (EVENTS // len(pool) + 1))[:EVENTS]
    app = create_app(served, settings=ServingConfig(auth=False, log_predictions=False))
    answers: list[dict[str, Any]] = []
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, EVENTS, 1000):
            reply = client.post("/v1/models/adult/predict", json=records[start : start + 1000])
            reply.raise_for_status()
            body = reply.json()
            head = {"model": body["model"], "version": body["version"]}
            answers += [{**head, **answer} for answer in body["predictions"]]
    registry.close()
    return AdultEvents(adult_model.home, records, answers)


def shipyard_command() -> list[str]:
    """The ``shipyard`` command of this checkout, as a subprocess runs it."""
    return [sys.executable, "-c", "from shipyard.cli import main; main()"]


@pytest.fixture
def stream_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``shipyard stream`` subprocesses (their output in a file); kill leftovers."""
    started: list[subprocess.Popen[bytes]] = []
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def start(*arguments: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"stream-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [*shipyard_command(), "stream", *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def output_of(tmp_path: Path) -> str:
    """The text the stream subprocesses printed."""
    return "\n".join(path.read_text() for path in sorted(tmp_path.glob("stream-*.log")))


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.1)


async def wait_for_async(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """:func:`wait_for` for a coroutine ``check``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:g} s waiting for {what}.")
        await asyncio.sleep(0.05)
