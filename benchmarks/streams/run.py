"""Stream scoring: events per second and end-to-end latency, shipyard against a plain loop.

The model is the serving benchmark's (benchmarks/serving/prepare.py: Adult, ordinal-encoded
categoricals + LightGBM, 200 trees). Two consumers read the same kind of NATS JetStream
subject, one at a time, each in its own process pinned to CPU 0 (when taskset exists):

- shipyard: ``shipyard stream adult`` (micro-batches through the compiled path, answers
  published with Nats-Msg-Id, every answer committed to the durable prediction log before
  the event is acknowledged);
- plain: plain_consumer.py, a hand-written pull-consumer loop calling the scikit-learn
  pipeline on a one-row DataFrame per event (no validation, no log).

This process (CPU 1) is a closed-loop producer: it keeps IN_FLIGHT events outstanding,
sending a new one each time an answer arrives, for DURATION seconds after a warm-up. The
latency of an event is the time from its publish to the arrival of its answer.

Run with the project's interpreter (a NATS server with JetStream at --url):
  python benchmarks/streams/run.py WORKDIR [--duration 10] [--in-flight 1 64]
Writes WORKDIR/streams-results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "serving"))

from prepare import build  # noqa: E402

from shipyard import datasets  # noqa: E402
from shipyard.training.export import frame_to_records  # noqa: E402


def pinned(command: list[str], cpu: int) -> list[str]:
    """Run ``command`` on one CPU when taskset is there."""
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") else command


def consumer_command(system: str, workdir: Path, url: str, source: str, to: str) -> list[str]:
    if system == "shipyard":
        return [
            sys.executable,
            "-c",
            "from shipyard.cli import main; main()",
            "stream",
            "adult",
            "--home",
            str(workdir / "home"),
            "--source",
            url,
            "--subject",
            source,
            "--to",
            to,
            "--poll-seconds",
            "0",
        ]
    return [sys.executable, str(HERE / "plain_consumer.py"), url, source, to, str(workdir)]


async def make_streams(url: str, source: str, to: str) -> None:
    client = await nats.connect(url)
    js = client.jetstream()
    await js.add_stream(name=f"BENCH_{source.replace('.', '_')}", subjects=[source])
    await js.add_stream(name=f"BENCH_{to.replace('.', '_')}", subjects=[to], duplicate_window=600)
    await client.close()


async def drop_streams(url: str, *subjects: str) -> None:
    client = await nats.connect(url)
    js = client.jetstream()
    for subject in subjects:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(f"BENCH_{subject.replace('.', '_')}")
    await client.close()


async def closed_loop(
    url: str,
    source: str,
    to: str,
    bodies: list[bytes],
    in_flight: int,
    duration: float,
    warmup: float,
    ready_timeout: float = 180.0,
) -> dict[str, Any]:
    """Keep ``in_flight`` events outstanding; return the answered count and latencies."""
    client = await nats.connect(url)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    state = {"measuring": False, "stopping": False, "answered": 0}
    numbers = itertools.count()
    prefix = uuid.uuid4().hex[:8]
    first_answer = asyncio.Event()

    async def send() -> None:
        number = next(numbers)
        event_id = f"{prefix}-{number}"
        sent[event_id] = time.perf_counter()
        await client.publish(
            source, bodies[number % len(bodies)], headers={"Nats-Msg-Id": event_id}
        )

    async def on_answer(message: Any) -> None:
        arrived = time.perf_counter()
        started = sent.pop(message.headers["Nats-Msg-Id"], None)
        if started is None:
            return
        first_answer.set()
        if state["measuring"]:
            latencies.append(arrived - started)
            state["answered"] += 1
        if not state["stopping"]:
            await send()

    await client.subscribe(to, cb=on_answer)
    await send()  # one event until the consumer is up (it loads the model first)
    await asyncio.wait_for(first_answer.wait(), ready_timeout)
    for _ in range(in_flight - 1):
        await send()
    await asyncio.sleep(warmup)
    state["measuring"] = True
    began = time.perf_counter()
    await asyncio.sleep(duration)
    state["measuring"] = False
    elapsed = time.perf_counter() - began
    state["stopping"] = True
    await client.close()
    values = np.array(latencies) * 1000
    return {
        "events": state["answered"],
        "seconds": elapsed,
        "events_per_second": state["answered"] / elapsed,
        "p50_ms": float(np.percentile(values, 50)) if len(values) else None,
        "p99_ms": float(np.percentile(values, 99)) if len(values) else None,
    }


def measure(
    system: str, workdir: Path, url: str, bodies: list[bytes], in_flight: int, args: Any
) -> dict[str, Any]:
    base = f"bench.{system}.{in_flight}.{uuid.uuid4().hex[:6]}"
    source, to = f"{base}.in", f"{base}.out"
    asyncio.run(make_streams(url, source, to))
    log = open(workdir / f"streams-{system}-{in_flight}.log", "wb")  # noqa: SIM115
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        pinned(consumer_command(system, workdir, url, source, to), 0),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    try:
        result = asyncio.run(
            closed_loop(url, source, to, bodies, in_flight, args.duration, args.warmup)
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        asyncio.run(drop_streams(url, source, to))
    return {"system": system, "in_flight": in_flight, **result}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| in flight | system | events/s | p50 ms | p99 ms | events/s ratio vs plain |",
        "|---|---|---|---|---|---|",
    ]
    plain = {row["in_flight"]: row for row in results if row["system"] == "plain"}
    for row in results:
        peer = plain.get(row["in_flight"])
        ratio = row["events_per_second"] / peer["events_per_second"] if peer else None
        lines.append(
            f"| {row['in_flight']} | {row['system']} | {row['events_per_second']:.0f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{'' if ratio is None or row['system'] == 'plain' else f'{ratio:.1f}x'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    workdir = args.workdir
    if not (workdir / "pipeline.joblib").is_file():
        build(workdir, rows=0)
    columns = json.loads((workdir / "columns.json").read_text())
    test = datasets.load("adult").test[columns]
    bodies = [orjson.dumps(record) for record in frame_to_records(test.head(5000))]
    results = []
    print(f"before: {uptime()}", flush=True)
    for in_flight in args.in_flight:
        for system in ("plain", "shipyard"):
            row = measure(system, workdir, args.url, bodies, in_flight, args)
            row["load"] = uptime()
            print(json.dumps(row), flush=True)
            results.append(row)
    (workdir / "streams-results.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))


if __name__ == "__main__":
    main()
