"""The ceiling: an empty endpoint on shipyard's own stack (uvicorn + Starlette + orjson).

It reads the body and answers a constant, the least any JSON endpoint on this stack can do.
Run: python benchmarks/serving/empty_app.py PORT
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = orjson.dumps({"prediction": "<=50K", "probabilities": {"<=50K": 0.9, ">50K": 0.1}})


async def predict(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )
