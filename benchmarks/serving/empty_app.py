"""The ceiling: an empty endpoint on shipyard's own stack (Starlette + orjson), and bare RSGI.

``app`` reads the body and answers a constant, the least any JSON endpoint on this stack can
do; uvicorn serves it when run as a script, granian with ``granian --interface asgi
empty_app:app``. ``rsgi_app`` does the same on granian's own interface (RSGI), with no
framework at all: ``granian --interface rsgi empty_app:rsgi_app``.
Run: python benchmarks/serving/empty_app.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = orjson.dumps({"prediction": "<=50K", "probabilities": {"<=50K": 0.9, ">50K": 0.1}})


async def predict(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])

_RSGI_HEADERS = [("content-type", "application/json")]


async def rsgi_app(scope: Any, protocol: Any) -> None:
    """The empty endpoint on RSGI: read the body, answer the constant."""
    await protocol()
    protocol.response_bytes(200, _RSGI_HEADERS, ANSWER)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )
