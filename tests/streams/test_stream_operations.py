"""Operating a stream consumer: settings refused with a reason, hot swap, metrics over HTTP."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.streams.conftest import AdultEvents, wait_for_async
from tests.streams.test_redis_stream import keys, length, publish, read_all, remove
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import MonitoringConfig, ServingConfig, StreamConfig
from shipyard.errors import BrokerError, ConfigError
from shipyard.streams import serve_stream
from shipyard.training.export import frame_to_records


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--subject", "in", "--to", "out"], "needs --source"),
        (["--source", "nats://127.0.0.1:4222", "--to", "out"], "needs --subject"),
        (
            ["--source", "kafka://127.0.0.1:9092", "--subject", "in", "--to", "out"],
            "names no supported broker",
        ),
        (
            ["--source", "nats://127.0.0.1:1", "--subject", "in", "--to", "out"],
            "Cannot connect to NATS at nats://127.0.0.1:1",
        ),
        (
            ["--source", "redis://127.0.0.1:1/0", "--subject", "in", "--to", "out"],
            "Cannot connect to Redis at redis://127.0.0.1:1/0",
        ),
    ],
)
def test_the_command_refuses_bad_settings_in_one_line(
    adult_events: AdultEvents, tmp_path: Path, flags: list[str], message: str
) -> None:
    home = tmp_path / "home"
    adult_events.registry(home).close()
    result = CliRunner().invoke(app, ["stream", "adult", "--home", str(home), *flags])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_errors_are_typed(adult_events: AdultEvents, tmp_path: Path) -> None:
    registry = adult_events.registry(tmp_path / "home")
    with pytest.raises(ConfigError, match=r"stream\.source, stream\.subject, stream\.to"):
        asyncio.run(serve_stream(registry, "adult", StreamConfig(), handle_signals=False))
    unreachable = StreamConfig(source="redis://127.0.0.1:1/0", subject="in", to="out")
    with pytest.raises(BrokerError):
        asyncio.run(serve_stream(registry, "adult", unreachable, handle_signals=False))
    registry.close()


def test_a_promoted_version_is_swapped_in_and_metrics_are_served(
    redis_url: str, loop_models: Any, tmp_path: Path
) -> None:
    registry = loop_models.registry(tmp_path / "home")
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).head(40))
    source, to, dead = keys()
    config = StreamConfig(
        source=redis_url, subject=source, to=to, dead_letter=dead, metrics_port=0
    )
    settings = ServingConfig(auth=False, poll_seconds=0.2)
    prefix = uuid.uuid4().hex[:8]

    def events(start: int, stop: int) -> list[tuple[str, bytes]]:
        return [(f"{prefix}-{i}", orjson.dumps(records[i])) for i in range(start, stop)]

    async def scenario() -> str:
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        run = asyncio.create_task(
            serve_stream(
                registry,
                "adult",
                config,
                settings,
                MonitoringConfig(drift_refresh_seconds=0),
                on_ready=ready.set_result,
                handle_signals=False,
            )
        )
        consumer = await asyncio.wait_for(ready, 60)
        publish(redis_url, source, events(0, 20))

        async def answered(count: int) -> bool:
            return length(redis_url, to) >= count

        await wait_for_async(lambda: answered(20), 60, "the first answers")
        registry.promote("adult", 2, "champion", reason="test: hot swap in a stream")
        state = consumer.scorer.context.state

        async def swapped() -> bool:
            return state.primary.model.version == 2

        await wait_for_async(swapped, 60, "the hot swap")
        publish(redis_url, source, events(20, 40))
        await wait_for_async(lambda: answered(40), 60, "the answers after the swap")
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{consumer.metrics_port}/metrics")
        consumer.stop()
        await run
        return reply.text

    try:
        metrics = asyncio.run(scenario())
        answers = read_all(redis_url, to)
    finally:
        remove(redis_url, source, to, dead)
        registry.close()
    versions = {entry["id"]: entry["data"]["version"] for entry in answers}
    assert {versions[f"{prefix}-{i}"] for i in range(20)} == {1}
    assert {versions[f"{prefix}-{i}"] for i in range(20, 40)} == {2}
    assert "shipyard_model_swaps_total 1.0" in metrics
    assert 'shipyard_stream_events_total{outcome="answered"} 40.0' in metrics
    assert 'shipyard_model_info{name="adult",role="primary",version="2"} 1.0' in metrics


def test_the_canary_answers_its_share_and_drift_gauges_refresh(
    redis_url: str, loop_models: Any, tmp_path: Path
) -> None:
    registry = loop_models.registry(tmp_path / "home")
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).head(30))
    source, to, dead = keys()
    config = StreamConfig(source=redis_url, subject=source, to=to, dead_letter=dead)
    settings = ServingConfig(auth=False, poll_seconds=0, canary="adult:2", canary_share=1.0)
    monitoring = MonitoringConfig(drift_refresh_seconds=0.2, window_size=10)
    prefix = uuid.uuid4().hex[:8]
    publish(redis_url, source, [(f"{prefix}-{i}", orjson.dumps(r)) for i, r in enumerate(records)])

    async def scenario() -> str:
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        run = asyncio.create_task(
            serve_stream(
                registry,
                "adult",
                config,
                settings,
                monitoring,
                on_ready=ready.set_result,
                handle_signals=False,
            )
        )
        consumer = await asyncio.wait_for(ready, 60)
        metrics = consumer.scorer.context.metrics

        async def settled() -> bool:
            text = metrics.render().decode()
            refreshed = re.search(r"^shipyard_drift_refreshed_seconds [1-9]", text, re.M)
            return length(redis_url, to) >= len(records) and refreshed is not None

        await wait_for_async(settled, 60, "the answers and a drift refresh")
        consumer.stop()
        await run
        return str(metrics.render().decode())

    try:
        metrics = asyncio.run(scenario())
        answers = read_all(redis_url, to)
    finally:
        remove(redis_url, source, to, dead)
        registry.close()
    assert {entry["data"]["version"] for entry in answers} == {2}
    assert 'shipyard_model_info{name="adult",role="canary",version="2"} 1.0' in metrics
    assert 'shipyard_predictions_total{label="<=50K",version="2"}' in metrics
