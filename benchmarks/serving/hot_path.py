"""Where one single-record prediction spends its time, in process (no sockets, no wrk).

Three parts, on prepare.py's Adult model (200 trees; built in WORKDIR when missing):

1. The predictor: ``predict_records([record])`` and the server's single-record path, then the
   pieces one at a time (validation, encoding, the trees, the answer).
2. The whole request path: the ASGI app ``shipyard serve`` builds (API key on), called directly
   with a prepared scope, body and ``send``, with monitoring on (durable prediction log with
   sketches at log time, the defaults) and off (``serving.log_predictions: false``).
   ``CONCURRENCY`` requests run at once, as clients would (durable mode answers once the
   batch holding a request's log row commits). Reported: wall time per request, and CPU time
   per request (the process's, the log thread's included: on one core, that is the ceiling).
3. The prediction log's writes: CPU per row of one transaction, by rows per transaction,
   with and without the sketches updated at log time (the server's log thread does this work,
   on the same core as the requests).

Every figure is the median and the minimum over ROUNDS rounds of REPEAT calls, so a busy
machine still gives a stable minimum. ``--profile FILE`` also writes a cProfile listing of
the request path with monitoring on.

Run with the project's interpreter:
  python benchmarks/serving/hot_path.py WORKDIR [--rounds 7] [--repeat 3000] [--profile FILE]
Writes WORKDIR/hot-path-results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
CONCURRENCY = 32


def timed(function: Callable[[], Any], rounds: int, repeat: int) -> dict[str, float]:
    """Microseconds per call: median and minimum over ``rounds`` rounds of ``repeat`` calls."""
    function()  # warm caches and first-call costs outside the timing
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        figures.append((time.perf_counter() - started) * 1e6 / repeat)
    return _summary(figures)


def predictor_figures(workdir: Path, rounds: int, repeat: int) -> dict[str, dict[str, float]]:
    from shipyard.registry.store import Registry
    from shipyard.runtime.fast import RecordEncoder, SingleRecordPath, accelerate

    home = workdir / "home"
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    record = json.loads((workdir / "record.json").read_text())
    batch = [record]
    loaded = registry.load_predictor("adult")
    figures = {"predict_records([record]), as loaded": lambda: loaded.predict_records(batch)}
    predictor = accelerate(registry.load_predictor("adult"))
    path = SingleRecordPath(predictor)
    encoder = RecordEncoder(predictor)
    row = encoder.encode(record)
    assert row is not None, "the benchmark record should take the one-pass encoder"
    scorer: Any = predictor.scorer
    outputs = path.outputs(record)
    figures |= {
        "predict_records([record]), accelerated": lambda: predictor.predict_records(batch),
        "single-record path (server)": lambda: path.predict(record),
        "  full validation (validator.check_records)": lambda: predictor.validator.check_records(
            batch
        ),
        "  one-pass check and encoding (RecordEncoder)": lambda: encoder.encode(record),
        "  compiled preprocessing (transform_record)": lambda: (
            predictor.preprocessor.transform_record(record)
        ),
        "  trees, one row (C API)": lambda: scorer.score_row(row),
        "  trees, one row through numpy (score)": lambda: scorer.score(
            np.array([row], dtype=np.float64)
        ),
        "  answer (path.answer)": lambda: path.answer(outputs),
    }
    return {name: timed(call, rounds, repeat) for name, call in figures.items()}


def build_app(workdir: Path, monitoring_on: bool) -> Any:
    """The app ``shipyard serve adult`` builds (API key on, no hot swap), monitoring on or off."""
    from shipyard.config import MonitoringConfig, ServingConfig
    from shipyard.registry.store import Registry
    from shipyard.serving import KeyStore, build_app
    from shipyard.serving.keys import default_keys_file

    home = workdir / "home"
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    settings = ServingConfig(poll_seconds=0, log_predictions=monitoring_on)
    keys = KeyStore(default_keys_file(home))
    return build_app(registry, "adult", settings, keys, monitoring=MonitoringConfig())


def request_scope(path: str, body: bytes, key: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """Send one request to the ASGI app; return its status and body."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(dict(scope), receive, send)
    return answer["status"], answer["body"]


async def _burst(app: Any, scope: dict[str, Any], body: bytes) -> None:
    """``CONCURRENCY`` requests at once, as that many clients would send them."""
    done = await asyncio.gather(*(call(app, scope, body) for _ in range(CONCURRENCY)))
    assert all(status == 200 for status, _ in done), done[0]


def _measure_app(
    app: Any, scope: dict[str, Any], body: bytes, rounds: int, batches: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU microseconds per request, one figure per round."""

    async def measure() -> tuple[list[float], list[float]]:
        await _burst(app, scope, body)  # warm up
        walls, cpus = [], []
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                await _burst(app, scope, body)
            count = batches * CONCURRENCY
            walls.append((time.perf_counter() - wall) * 1e6 / count)
            cpus.append((time.process_time() - cpu) * 1e6 / count)
        return walls, cpus

    result: tuple[list[float], list[float]] = _run(measure())
    return result


def _profile_app(app: Any, scope: dict[str, Any], body: bytes, batches: int, path: Path) -> None:
    async def bursts() -> None:
        for _ in range(batches):
            await _burst(app, scope, body)

    profiler = cProfile.Profile()
    profiler.enable()
    _run(bursts())
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
    path.write_text(text.getvalue())


def request_figures(
    workdir: Path, rounds: int, repeat: int, profile: Path | None
) -> dict[str, dict[str, float]]:
    record = json.loads((workdir / "record.json").read_text())
    key = (workdir / "api-key.txt").read_text().strip()
    body = orjson.dumps(record)
    scope = request_scope("/v1/models/adult/predict", body, key)
    batches = max(repeat // CONCURRENCY, 1)
    figures: dict[str, dict[str, float]] = {}
    for monitoring_on in (False, True):
        app = build_app(workdir, monitoring_on)
        label = "monitoring on" if monitoring_on else "monitoring off"
        walls, cpus = _measure_app(app, scope, body, rounds, batches)
        figures[f"request, {label}: wall"] = _summary(walls)
        figures[f"request, {label}: CPU"] = _summary(cpus)
        if monitoring_on and profile is not None:
            _profile_app(app, scope, body, batches, profile)
        log = app.state.serving.prediction_log
        if log is not None:
            log.close()
    return figures


def log_figures(workdir: Path, rounds: int) -> dict[str, dict[str, float]]:
    """CPU microseconds per row of one log transaction, by rows per transaction.

    The server's log thread writes what is queued in one transaction (group commit), so its
    cost per request depends on how many requests wait together; with sketches, each batch
    also updates its time buckets' sketches in the same transaction.
    """
    from shipyard.monitoring.buckets import SketchBook
    from shipyard.monitoring.log import MonitoringStore, PredictionRecord
    from shipyard.pipeline.monitor import open_row_sketcher
    from shipyard.registry.store import Registry
    from shipyard.serving.context import new_request_id

    home = workdir / "home"
    url = f"sqlite:///{home / 'registry.db'}"
    registry = Registry(url, home / "artifacts")
    store = MonitoringStore(url)
    book = SketchBook(lambda name, number: open_row_sketcher(registry, f"{name}:{number}"))
    book.prepare("adult", 1)
    record = json.loads((workdir / "record.json").read_text())
    output = {"prediction": "<=50K", "probabilities": {"<=50K": 0.9, ">50K": 0.1}}
    figures: dict[str, dict[str, float]] = {}
    for size in (1, 8, 32, 128):
        for sketches in (None, book):
            transactions = max(256 // size, 4)
            per_row = []
            for _ in range(rounds):
                batches = [
                    [
                        PredictionRecord(new_request_id(), "adult", 1, record, dict(output), 0.1)
                        for _ in range(size)
                    ]
                    for _ in range(transactions)
                ]
                started = time.process_time()
                for rows in batches:
                    store.add_batch(rows, (), sketches)
                per_row.append((time.process_time() - started) * 1e6 / (size * transactions))
            kind = "with sketches" if sketches is not None else "log only"
            figures[f"log write, {size} rows per transaction, {kind}: CPU per row"] = _summary(
                per_row
            )
    store.close()
    return figures


def _summary(figures: list[float]) -> dict[str, float]:
    return {"median_us": statistics.median(figures), "min_us": min(figures)}


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # uvicorn runs on asyncio's loop then too
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3000, help="calls per round")
    parser.add_argument("--profile", type=Path, help="write a cProfile listing here")
    parser.add_argument("--output", default="hot-path-results.json", help="file in WORKDIR")
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    if not (workdir / "record.json").is_file():
        sys.path.insert(0, str(HERE))
        from prepare import build

        build(workdir, 0)
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    figures = predictor_figures(workdir, arguments.rounds, arguments.repeat)
    figures |= request_figures(workdir, arguments.rounds, arguments.repeat, arguments.profile)
    figures |= log_figures(workdir, arguments.rounds)
    results = {
        "uptime_before": uptime_before,
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "rounds": arguments.rounds,
        "repeat": arguments.repeat,
        "concurrency": CONCURRENCY,
        "figures": figures,
    }
    (workdir / arguments.output).write_text(json.dumps(results, indent=2))
    print(f"load: {results['uptime_before']} -> {results['uptime_after']}")
    print("| what | median us | min us |\n|---|---:|---:|")
    for name, figure in figures.items():
        print(f"| {name} | {figure['median_us']:.1f} | {figure['min_us']:.1f} |")


if __name__ == "__main__":
    main()
