"""The peer: a plain JetStream consumer loop that calls the scikit-learn pipeline per event.

What a user writes by hand around a fitted pipeline: a durable pull consumer, one
``predict_proba`` on a one-row DataFrame per event, the answer published to JetStream with
the event's id as ``Nats-Msg-Id``, then the acknowledgement. No validation, no prediction log.

Run by run.py:  python plain_consumer.py URL SUBJECT TO WORKDIR
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import joblib
import nats
import orjson
import pandas as pd
from nats.js import api


async def main(url: str, subject: str, to: str, workdir: Path) -> None:
    pipeline = joblib.load(workdir / "pipeline.joblib")
    columns = json.loads((workdir / "columns.json").read_text())
    classes = ["<=50K", ">50K"]
    client = await nats.connect(url)
    js = client.jetstream()
    stream = await js.find_stream_name_by_subject(subject)
    consumer = await js.pull_subscribe(
        subject,
        durable="plain-loop",
        stream=stream,
        config=api.ConsumerConfig(ack_wait=30, max_ack_pending=4096),
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    while not stopping.is_set():
        try:
            messages = await consumer.fetch(64, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        pending = []
        for message in messages:
            record = orjson.loads(message.data)
            frame = pd.DataFrame([record], columns=columns)
            probabilities = pipeline.predict_proba(frame)[0]
            answer = {
                "prediction": classes[int(probabilities.argmax())],
                "probabilities": dict(zip(classes, probabilities.tolist(), strict=True)),
            }
            event_id = message.headers["Nats-Msg-Id"]
            pending.append(
                await js.publish_async(
                    to, orjson.dumps({"id": event_id, **answer}), headers={"Nats-Msg-Id": event_id}
                )
            )
        await asyncio.gather(*pending)
        for message in messages:
            await message.ack()
    await client.flush()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
