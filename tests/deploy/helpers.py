"""Helpers of the deployment tests: a live server over a real socket, JSON posts, records."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shipyard.config import ServingConfig
from shipyard.registry.store import Registry


@contextmanager
def live_server(registry: Registry, reference: str) -> Iterator[str]:
    """Serve ``reference`` without keys on a free port over a real socket; yield its URL."""
    import uvicorn

    from shipyard.serving import build_app

    app = build_app(registry, reference, ServingConfig(auth=False, poll_seconds=0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "the server stopped before it started"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post_json(url: str, payload: Any, key: str | None = None) -> Any:
    """POST ``payload`` as JSON; return the decoded answer."""
    import json
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def held_out_records(count: int) -> list[dict[str, Any]]:
    """The first ``count`` records of Adult's test split, without the label."""
    from shipyard import datasets
    from shipyard.training.export import frame_to_records

    return frame_to_records(datasets.load("adult").test.drop(columns="income").head(count))


def get_json(url: str) -> Any:
    """GET ``url``; return the decoded answer."""
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())
