"""`shipyard stream` against a real NATS JetStream server: answers, exactly once, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from pathlib import Path
from typing import Any

import nats
import orjson
from tests.streams.conftest import AdultEvents, output_of, wait_for, wait_for_async

from shipyard.config import MonitoringConfig, ServingConfig, StreamConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.streams import serve_stream
from shipyard.streams.nats_broker import NatsBroker, stream_name_for

SETTINGS = ServingConfig(auth=False, poll_seconds=0)
MONITORING = MonitoringConfig(drift_refresh_seconds=0)


def subjects() -> tuple[str, str, str]:
    """Fresh input, output and dead-letter subjects for one test."""
    base = f"shipyard-test.{uuid.uuid4().hex[:10]}"
    return f"{base}.in", f"{base}.out", f"{base}.dead"


async def publish(url: str, subject: str, events: list[tuple[str, bytes]]) -> None:
    """Store events in a stream capturing ``subject`` (created here), ids as Nats-Msg-Id."""
    client = await nats.connect(url)
    js = client.jetstream()
    await js.add_stream(name=stream_name_for(subject), subjects=[subject])
    for event_id, body in events:
        await client.publish(subject, body, headers={"Nats-Msg-Id": event_id})
    await client.flush()
    await client.close()


async def stored(url: str, subject: str) -> int:
    """How many messages the stream of ``subject`` holds (0 before it exists)."""
    client = await nats.connect(url)
    try:
        info = await client.jetstream().stream_info(stream_name_for(subject))
        return int(info.state.messages)
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await client.close()


async def read_all(url: str, subject: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message stored for ``subject``: (Nats-Msg-Id, decoded body), in order."""
    client = await nats.connect(url)
    js = client.jetstream()
    total = (await js.stream_info(stream_name_for(subject))).state.messages
    reader = await js.pull_subscribe(subject, stream=stream_name_for(subject))
    found: list[tuple[str, dict[str, Any]]] = []
    while len(found) < total:
        for message in await reader.fetch(1000, timeout=5):
            found.append((message.headers["Nats-Msg-Id"], orjson.loads(message.data)))
            await message.ack()
    await client.close()
    return found


async def remove(url: str, *names: str) -> None:
    """Delete the test's streams."""
    client = await nats.connect(url)
    js = client.jetstream()
    for name in names:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream_name_for(name))
    await client.close()


async def consume_until(
    registry: Any, config: StreamConfig, done: Any, timeout: float = 120
) -> Any:
    """Run the consumer in this process until ``done()`` is true; return its summary."""
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
    await wait_for_async(done, timeout, "the answers")
    consumer.stop()
    return consumer, await run


def test_ten_thousand_events_get_the_http_answers_once(
    nats_url: str, adult_events: AdultEvents, tmp_path: Path
) -> None:
    source, to, dead = subjects()
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{index}" for index in range(len(adult_events.records))]
    registry = adult_events.registry(tmp_path / "home")
    config = StreamConfig(source=nats_url, subject=source, to=to, dead_letter=dead, metrics_port=0)

    async def scenario() -> tuple[Any, Any, list[tuple[str, dict[str, Any]]]]:
        await publish(
            nats_url,
            source,
            [(i, orjson.dumps(r)) for i, r in zip(ids, adult_events.records, strict=True)],
        )

        async def all_answered() -> bool:
            return await stored(nats_url, to) >= len(ids)

        consumer, summary = await consume_until(registry, config, all_answered)
        return consumer, summary, await read_all(nats_url, to)

    try:
        consumer, summary, answers = asyncio.run(scenario())
    finally:
        asyncio.run(remove(nats_url, source, to, dead))
    assert summary.answered == len(ids)
    assert summary.dead_letters == 0
    assert [event_id for event_id, _ in answers] == [body["id"] for _, body in answers]
    assert sorted(event_id for event_id, _ in answers) == sorted(ids)
    by_id = dict(answers)
    for event_id, expected in zip(ids, adult_events.http_answers, strict=True):
        answer = dict(by_id[event_id])
        assert answer.pop("id") == event_id
        assert answer == expected
    # Logged under the event ids: feedback names them, as it names HTTP request ids.
    store = MonitoringStore(registry.url)
    assert store.count("adult")["predictions"] == len(ids)
    assert store.add_feedback("adult", [(ids[0], 1)]) == 1
    store.close()
    rendered = consumer.scorer.context.metrics.render().decode()
    assert f'shipyard_stream_events_total{{outcome="answered"}} {float(len(ids))}' in rendered
    assert "shipyard_stream_lag 0.0" in rendered
    registry.close()


def test_malformed_events_land_in_the_dead_letters_with_their_reason(
    nats_url: str, adult_events: AdultEvents, tmp_path: Path
) -> None:
    source, to, dead = subjects()
    good = adult_events.records[0]
    events = [
        ("not-json", b"{this is not json"),
        ("a-list", b"[1, 2, 3]"),
        ("bad-age", orjson.dumps({**good, "age": "old"})),
        ("unknown-field", orjson.dumps({**good, "agee": 40})),
        ("fine", orjson.dumps(good)),
    ]
    registry = adult_events.registry(tmp_path / "home")
    config = StreamConfig(source=nats_url, subject=source, to=to, dead_letter=dead)

    async def scenario() -> tuple[list[Any], list[Any]]:
        await publish(nats_url, source, events)

        async def settled() -> bool:
            return await stored(nats_url, to) == 1 and await stored(nats_url, dead) == 4

        await consume_until(registry, config, settled, timeout=60)
        return await read_all(nats_url, to), await read_all(nats_url, dead)

    try:
        answers, letters = asyncio.run(scenario())
    finally:
        asyncio.run(remove(nats_url, source, to, dead))
    registry.close()
    assert [event_id for event_id, _ in answers] == ["fine"]
    reasons = {event_id: body["reason"] for event_id, body in letters}
    assert "not valid JSON" in reasons["not-json"]
    assert "one JSON object" in reasons["a-list"]
    assert "field 'age'" in reasons["bad-age"]
    assert "expected a number" in reasons["bad-age"]
    assert "did you mean 'age'" in reasons["unknown-field"]
    assert {body["data"] for _, body in letters} >= {"{this is not json", "[1, 2, 3]"}


def test_kill_9_mid_stream_then_restart_loses_and_repeats_no_answer(
    nats_url: str, adult_events: AdultEvents, tmp_path: Path, stream_process: Any
) -> None:
    source, to, dead = subjects()
    count = 3000
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{index}" for index in range(count)]
    home = tmp_path / "home"
    adult_events.registry(home).close()
    arguments = [
        "adult",
        "--home",
        str(home),
        "--source",
        nats_url,
        "--subject",
        source,
        "--to",
        to,
        "--dead-letter",
        dead,
        "--ack-wait",
        "2",
        "--max-batch-size",
        "16",
        "--poll-seconds",
        "0",
    ]
    records = adult_events.records[:count]
    asyncio.run(
        publish(
            nats_url, source, [(i, orjson.dumps(r)) for i, r in zip(ids, records, strict=True)]
        )
    )
    try:
        first = stream_process(*arguments)
        wait_for(
            lambda: asyncio.run(stored(nats_url, to)) >= 300 or first.poll() is not None,
            120,
            "the first answers",
        )
        assert first.poll() is None, output_of(tmp_path)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        before_restart = asyncio.run(stored(nats_url, to))
        assert before_restart < count  # killed mid-stream
        second = stream_process(*arguments)
        wait_for(
            lambda: asyncio.run(stored(nats_url, to)) >= count or second.poll() is not None,
            120,
            "the answers after the restart",
        )
        second.send_signal(signal.SIGTERM)  # a graceful drain: exit code 0
        assert second.wait(timeout=60) == 0, output_of(tmp_path)
        answers = asyncio.run(read_all(nats_url, to))
    finally:
        asyncio.run(remove(nats_url, source, to, dead))
    answered = [event_id for event_id, _ in answers]
    assert len(answered) == count
    assert sorted(answered) == sorted(ids)  # none lost, none twice
    store = MonitoringStore(f"sqlite:///{home / 'registry.db'}")
    assert store.count("adult")["predictions"] == count  # each logged once
    store.close()
    assert "Stopped:" in output_of(tmp_path)


def test_one_event_in_flight_is_not_held_back_by_the_poll(nats_url: str) -> None:
    # The consumer's read: a long poll for a batch, then a short wait for company. The short
    # wait's lingering pull used to capture the next event, and the next long poll then
    # waited out its whole timeout for the rest of its batch: one event in five or so.
    source, to, dead = subjects()
    poll, events = 4.0, 20

    async def closed_loop() -> list[float]:
        broker = await NatsBroker.connect(
            nats_url,
            source,
            to,
            dead,
            "one-in-flight",
            ack_wait=30,
            dedup_seconds=60,
            max_in_flight=64,
        )
        client = await nats.connect(nats_url)
        waits: list[float] = []
        try:
            clock = asyncio.get_running_loop().time
            for number in range(events):
                sent = clock()
                await client.publish(source, b"{}", headers={"Nats-Msg-Id": f"e{number}"})
                batch = await broker.fetch(64, poll)
                if batch:
                    batch += await broker.fetch(64 - len(batch), 0.002)
                waits.append(clock() - sent)
                assert [event.id for event in batch] == [f"e{number}"]
                for event in batch:
                    await event.handle.ack()
        finally:
            await client.close()
            await broker.close()
        return waits

    try:
        waits = asyncio.run(closed_loop())
    finally:
        asyncio.run(remove(nats_url, source, to, dead))
    slow = [round(wait, 2) for wait in waits if wait > poll / 2]
    assert slow == [], f"events waited for the poll to end: {slow} s"
