"""Request ids: random, unique, in ``uuid4().hex``'s form, across pool refills and threads."""

from __future__ import annotations

import threading
import uuid

from shipyard.serving.context import new_request_id


def test_request_ids_are_unique_version_4_uuids_across_refills_and_threads():
    found: list[str] = []

    def draw() -> None:
        found.extend(new_request_id() for _ in range(700))  # several pools of 256

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == len(found) == 2800
    for request_id in found:
        parsed = uuid.UUID(hex=request_id)
        assert parsed.hex == request_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
