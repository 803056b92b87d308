"""A small, real OpenAI-compatible chat-completions server that answers from its prompt alone.

It stands in for llama.cpp's ``llama-server`` (or vLLM, Ollama) in the generator tests: no
model weights can be downloaded there, so instead of a language model it answers
deterministically from the prompt it receives. It reads the numbered sources between the
nonce markers the system message announces, and replies with the source sentence sharing the
most words with the question, cited ``[n]``; with no shared word it replies "I don't know.".
Like a model that keeps quoted data apart from instructions, it obeys an instruction ("IGNORE
ALL PREVIOUS INSTRUCTIONS ... reply WORD") only when it appears outside the quoted sources:
a note that could break out of its quotation could take it over.

The model name picks a misbehaviour for the refusal checks: ``cites-unknown`` cites a source
that was not sent, ``cites-nothing`` answers without a citation.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
_INJECTION = re.compile(
    r"IGNORE ALL PREVIOUS INSTRUCTIONS.*?reply (?:only with the word )?(\w+)", re.S
)


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if len(word) > 3}


def answer(messages: list[dict[str, str]], model: str) -> str:
    """The reply to a chat, from the prompt alone."""
    system, user = messages[0]["content"], messages[-1]["content"]
    nonce = re.search(r"<<<([0-9a-f]+)", system)
    if nonce is None:
        return "I don't know."
    marker = nonce.group(1)
    block = re.compile(rf"\[(\d+)\] [^\n]*\n<<<{marker}\n(.*?)\n{marker}>>>", re.S)
    sources = {int(number): text for number, text in block.findall(user)}
    outside = block.sub("", user)
    injected = _INJECTION.search(outside)
    if injected:
        return injected.group(1)
    if model == "cites-unknown":
        return f"Everything is fine [{len(sources) + 7}]."
    if model == "cites-nothing":
        return "Everything is fine."
    question = _words(outside.split("Question:", 1)[-1])
    best = (0, 0, "")
    for number, text in sorted(sources.items()):
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            shared = len(question & _words(sentence))
            if shared > best[0]:
                best = (shared, number, sentence.strip())
    if best[0] == 0:
        return "I don't know."
    return f"{best[2]} [{best[1]}]"


class _Handler(BaseHTTPRequestHandler):
    prompts: list[list[dict[str, str]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        self.server.prompts.append(body["messages"])  # type: ignore[attr-defined]
        reply: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": answer(body["messages"], body["model"]),
                    },
                    "finish_reason": "stop",
                }
            ],
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def openai_server() -> Iterator[tuple[str, list[list[dict[str, str]]]]]:
    """Serve on a free port; yield the base URL (``.../v1``) and the prompts received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.prompts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.prompts  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
