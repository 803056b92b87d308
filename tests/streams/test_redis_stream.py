"""`shipyard stream` against a real Redis server: answers, exactly once, dead letters."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from tests.streams.conftest import AdultEvents, output_of, wait_for, wait_for_async

from shipyard.config import MonitoringConfig, ServingConfig, StreamConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.streams import serve_stream

SETTINGS = ServingConfig(auth=False, poll_seconds=0)
MONITORING = MonitoringConfig(drift_refresh_seconds=0)


def keys() -> tuple[str, str, str]:
    """Fresh input, output and dead-letter stream keys for one test."""
    base = f"shipyard-test:{uuid.uuid4().hex[:10]}"
    return f"{base}:in", f"{base}:out", f"{base}:dead"


def publish(url: str, key: str, events: list[tuple[str, bytes]]) -> None:
    """Add events to the stream ``key``: an ``id`` and a ``data`` field each."""
    client = redis.Redis.from_url(url)
    with client.pipeline(transaction=False) as pipe:
        for event_id, body in events:
            pipe.xadd(key, {"id": event_id, "data": body})
        pipe.execute()
    client.close()


def read_all(url: str, key: str) -> list[dict[str, Any]]:
    """Every entry of the stream ``key``, its fields decoded (``data`` as JSON)."""
    client = redis.Redis.from_url(url)
    entries = client.xrange(key)
    client.close()
    found = []
    for _, fields in entries:
        entry = {name.decode(): value.decode() for name, value in fields.items()}
        entry["data"] = orjson.loads(entry["data"])
        found.append(entry)
    return found


def length(url: str, key: str) -> int:
    """How many entries the stream ``key`` holds."""
    client = redis.Redis.from_url(url)
    count = int(client.xlen(key))
    client.close()
    return count


def remove(url: str, *names: str) -> None:
    """Delete the test's streams and their guard keys."""
    client = redis.Redis.from_url(url)
    for name in names:
        client.delete(name, *client.scan_iter(match=f"{name}:done:*", count=1000))
    client.close()


async def consume_until(registry: Any, config: StreamConfig, done: Any) -> Any:
    """Run the consumer in this process until ``done()`` is true; return it and its summary."""
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    run = asyncio.create_task(
        serve_stream(
            registry,
            "adult",
            config,
            SETTINGS,
            MONITORING,
            on_ready=ready.set_result,
            handle_signals=False,
        )
    )
    consumer = await asyncio.wait_for(ready, 60)

    async def check() -> bool:
        return bool(done())

    await wait_for_async(check, 120, "the answers")
    consumer.stop()
    return consumer, await run


def test_ten_thousand_events_get_the_http_answers_once(
    redis_url: str, adult_events: AdultEvents, tmp_path: Path
) -> None:
    source, to, dead = keys()
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{index}" for index in range(len(adult_events.records))]
    registry = adult_events.registry(tmp_path / "home")
    config = StreamConfig(source=redis_url, subject=source, to=to, dead_letter=dead)
    publish(
        redis_url,
        source,
        [(i, orjson.dumps(r)) for i, r in zip(ids, adult_events.records, strict=True)],
    )
    try:
        consumer, summary = asyncio.run(
            consume_until(registry, config, lambda: length(redis_url, to) >= len(ids))
        )
        answers = read_all(redis_url, to)
    finally:
        remove(redis_url, source, to, dead)
    assert summary.answered == len(ids)
    assert sorted(entry["id"] for entry in answers) == sorted(ids)
    by_id = {entry["id"]: entry["data"] for entry in answers}
    for event_id, expected in zip(ids, adult_events.http_answers, strict=True):
        answer = dict(by_id[event_id])
        assert answer.pop("id") == event_id
        assert answer == expected
    store = MonitoringStore(registry.url)
    assert store.count("adult")["predictions"] == len(ids)
    store.close()
    rendered = consumer.scorer.context.metrics.render().decode()
    assert "shipyard_stream_lag 0.0" in rendered
    registry.close()


def test_malformed_events_land_in_the_dead_letters_with_their_reason(
    redis_url: str, adult_events: AdultEvents, tmp_path: Path
) -> None:
    source, to, dead = keys()
    good = adult_events.records[0]
    registry = adult_events.registry(tmp_path / "home")
    config = StreamConfig(source=redis_url, subject=source, to=to, dead_letter=dead)
    publish(
        redis_url,
        source,
        [
            ("not-json", b"{this is not json"),
            ("bad-age", orjson.dumps({**good, "age": "old"})),
            ("fine", orjson.dumps(good)),
        ],
    )
    client = redis.Redis.from_url(redis_url)
    client.xadd(source, {"note": "no data field"})  # an entry without the record
    client.close()
    try:
        consumer, _ = asyncio.run(
            consume_until(
                registry,
                config,
                lambda: length(redis_url, to) == 1 and length(redis_url, dead) == 3,
            )
        )
        answers, letters = read_all(redis_url, to), read_all(redis_url, dead)
    finally:
        remove(redis_url, source, to, dead)
    registry.close()
    assert [entry["id"] for entry in answers] == ["fine"]
    reasons = {entry["id"]: entry["reason"] for entry in letters}
    assert "not valid JSON" in reasons["not-json"]
    assert "field 'age'" in reasons["bad-age"]
    assert sum("not valid JSON" in reason for reason in reasons.values()) == 2
    rendered = consumer.scorer.context.metrics.render().decode()
    assert 'shipyard_stream_dead_letters_total{reason="invalid_json"} 2.0' in rendered
    assert 'shipyard_stream_dead_letters_total{reason="validation_error"} 1.0' in rendered


def test_kill_9_mid_stream_then_restart_loses_and_repeats_no_answer(
    redis_url: str, adult_events: AdultEvents, tmp_path: Path, stream_process: Any
) -> None:
    source, to, dead = keys()
    count = 2000
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{index}" for index in range(count)]
    home = tmp_path / "home"
    adult_events.registry(home).close()
    arguments = [
        "adult",
        "--home",
        str(home),
        "--source",
        redis_url,
        "--subject",
        source,
        "--to",
        to,
        "--dead-letter",
        dead,
        "--max-batch-size",
        "16",
        "--poll-seconds",
        "0",
    ]
    records = adult_events.records[:count]
    publish(redis_url, source, [(i, orjson.dumps(r)) for i, r in zip(ids, records, strict=True)])
    try:
        first = stream_process(*arguments)
        wait_for(
            lambda: length(redis_url, to) >= 200 or first.poll() is not None,
            120,
            "the first answers",
        )
        assert first.poll() is None, output_of(tmp_path)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert length(redis_url, to) < count  # killed mid-stream
        second = stream_process(*arguments)
        wait_for(
            lambda: length(redis_url, to) >= count or second.poll() is not None,
            120,
            "the answers after the restart",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, output_of(tmp_path)
        answers = read_all(redis_url, to)
        client = redis.Redis.from_url(redis_url)
        pending = client.xpending(source, "shipyard-adult")["pending"]
        client.close()
    finally:
        remove(redis_url, source, to, dead)
    answered = [entry["id"] for entry in answers]
    assert len(answered) == count
    assert sorted(answered) == sorted(ids)
    assert pending == 0  # every event acknowledged
    store = MonitoringStore(f"sqlite:///{home / 'registry.db'}")
    assert store.count("adult")["predictions"] == count
    store.close()
