"""LightGBM trees on a compiled C kernel: the batch path's exact, faster evaluator.

One C kernel (``trees.c``, QuickScorer: per-tree leaf bit masks, cleared by the nodes that
send a row right, with each feature's numerical nodes sorted by threshold) scores any LightGBM
model from tables built here out of its text model. It reproduces LightGBM's own prediction
arithmetic, so its answers are LightGBM's to the last bit (the tests compare them with
``np.array_equal``):

- a feature value with ``|x| <= 1e-35`` becomes ``0.0``, as LightGBM's dense-row reader does;
- numerical splits follow ``Tree::NumericalDecision``: NaN becomes ``0.0`` unless the split's
  missing type is NaN; a *zero* missing type sends ``|x| <= 1e-35`` (and NaN) the default
  way, a *NaN* one sends NaN the default way; otherwise ``x <= threshold``, with the double
  threshold of the text model;
- categorical splits follow ``Tree::CategoricalDecision``: the value is truncated to ``int``
  (NaN and values outside the ``int`` range give a negative number, as the x86-64 conversion
  LightGBM runs does), negative goes right, otherwise the bitset decides;
- each output is a sequential ``double`` sum of its trees' leaf values in training order,
  starting from ``0.0`` (``GBDT::PredictRaw``); then the objective's transform with the C
  library's ``exp``: ``1 / (1 + exp(-sigmoid * x))`` for ``binary``, LightGBM's max-shifted
  softmax for ``multiclass``, the identity for the regression objectives.

The kernel is compiled with ``-O2 -ffp-contract=off`` (no fast-math: no reassociation, no
fused multiply-add) by the system C compiler, ``$CC`` or ``cc``, into a shared library loaded
with :mod:`ctypes`. Rows are split over threads (``ctypes`` releases the GIL); each row is
scored on its own, so an answer never depends on how rows were batched or split.

The library does not depend on the model, so it is built once per kernel source, compiler and
flags (the SHA-256 of those is the cache key) and a model's tables take milliseconds. The
cache holds ``KEY.so`` and ``KEY.json`` (the library's SHA-256), each written to a temporary
name and renamed; a library whose hash does not match its record is rebuilt. The cache is
``$SHIPYARD_CACHE_DIR/compiled``, else ``$XDG_CACHE_HOME/shipyard/compiled``
(``~/.cache/shipyard/compiled``), never inside a bundle, whose files are immutable and hashed.

Anything the kernel cannot do exactly (a linear-tree model, an objective without a known
transform, ``average_output``) or at all (no C compiler, a failed build) raises
:class:`CompilationError`; :func:`load_compiled` turns that into a log line and ``None``, and the
caller keeps LightGBM's own predict. ``SHIPYARD_COMPILED_TREES=0`` turns the kernel off.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.runtime.models import FloatArray

__all__ = [
    "GENERATOR_VERSION",
    "CompilationError",
    "CompiledTrees",
    "compile_model",
    "compile_scorer",
    "default_cache_dir",
    "kernel_source",
    "load_compiled",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "2"
"""Part of the cache key (with the kernel's source, the compiler and the flags)."""

CFLAGS = ("-O2", "-fPIC", "-shared", "-fno-fast-math", "-ffp-contract=off")
"""No fast-math and no contraction: the C must round exactly as LightGBM's C++ does."""

_IDENTITY_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
)
_MAX_CATEGORY_WORDS = 8_000_000
"""Beyond this (64 MiB of masks: many trees with wide categorical splits), LightGBM scores."""
_ROWS_PER_THREAD = 20_000
"""Below this many rows per thread, one thread does the work (threads cost more than trees)."""


class CompilationError(RuntimeError):
    """The model cannot be compiled exactly, or the build failed; LightGBM's predict is used."""


@dataclass(frozen=True)
class _Tree:
    """One tree of a LightGBM text model: node arrays as in ``Tree::Tree(const char*)``."""

    leaf_value: tuple[float, ...]
    split_feature: tuple[int, ...] = ()
    threshold: tuple[float, ...] = ()
    decision_type: tuple[int, ...] = ()
    left_child: tuple[int, ...] = ()
    right_child: tuple[int, ...] = ()
    cat_boundaries: tuple[int, ...] = ()
    cat_threshold: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Model:
    """What the kernel's tables are built from."""

    n_features: int
    n_outputs: int
    transform: str
    """``sigmoid``, ``softmax`` or ``identity``."""
    sigmoid: float
    trees: tuple[_Tree, ...]


def _numbers(text: str, kind: type) -> tuple[Any, ...]:
    return tuple(kind(item) for item in text.split()) if text else ()


def _parse(model_text: str) -> _Model:
    """Read the header and the trees of a LightGBM text model (format ``v4``)."""
    header: dict[str, str] = {}
    flags: set[str] = set()
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for raw_line in model_text.splitlines():
        line = raw_line.strip()
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            current = {}
            blocks.append(current)
            continue
        if not line:
            continue
        key, has_value, value = line.partition("=")
        if current is None:
            if has_value:
                header[key] = value
            else:
                flags.add(key)
        else:
            current[key] = value
    if header.get("version") != "v4":
        raise CompilationError(f"model format {header.get('version')!r} is not 'v4'")
    if "average_output" in flags:
        raise CompilationError("the model averages its trees (random forest mode)")
    objective, *options = header.get("objective", "").split()
    settings = dict(option.partition(":")[::2] for option in options)
    n_outputs = int(header.get("num_tree_per_iteration", "1"))
    if objective == "binary":
        transform = "sigmoid"
    elif objective == "multiclass":
        transform = "softmax"
    elif objective in _IDENTITY_OBJECTIVES and "sqrt" not in options:
        transform = "identity"
    else:
        raise CompilationError(f"objective '{' '.join([objective, *options])}' is not supported")
    if (transform == "softmax") != (n_outputs > 1):
        raise CompilationError(f"objective '{objective}' with {n_outputs} trees per iteration")
    trees = []
    for block in blocks:
        if block.get("is_linear", "0") != "0":
            raise CompilationError("the model has linear trees")
        trees.append(
            _Tree(
                leaf_value=_numbers(block["leaf_value"], float),
                split_feature=_numbers(block.get("split_feature", ""), int),
                threshold=_numbers(block.get("threshold", ""), float),
                decision_type=_numbers(block.get("decision_type", ""), int),
                left_child=_numbers(block.get("left_child", ""), int),
                right_child=_numbers(block.get("right_child", ""), int),
                cat_boundaries=_numbers(block.get("cat_boundaries", ""), int),
                cat_threshold=_numbers(block.get("cat_threshold", ""), int),
            )
        )
    if not trees or len(trees) % n_outputs:
        raise CompilationError(f"{len(trees)} trees for {n_outputs} outputs per iteration")
    return _Model(
        n_features=int(header["max_feature_idx"]) + 1,
        n_outputs=n_outputs,
        transform=transform,
        sigmoid=float(settings.get("sigmoid", "1")),
        trees=tuple(trees),
    )


_FIELDS = (
    "initial",
    "leaf_offset",
    "leaf_value",
    "plain_start",
    "plain_threshold",
    "plain_tree",
    "plain_mask",
    "zero_start",
    "zero_threshold",
    "zero_tree",
    "zero_mask",
    "nan_start",
    "nan_tree",
    "nan_mask",
    "zeroval_start",
    "zeroval_tree",
    "zeroval_mask",
    "cat_base",
    "cat_start",
    "cat_tree",
    "cat_mask",
)
_TRANSFORMS = {"identity": 0, "sigmoid": 1, "softmax": 2}


class _Layout(ctypes.Structure):
    """The kernel's ``Model`` struct (``trees.c``): sizes, then one pointer per table."""

    _fields_ = [
        *[
            (name, ctypes.c_int32)
            for name in ("n_features", "n_trees", "n_outputs", "words", "transform", "unused")
        ],
        ("sigmoid", ctypes.c_double),
        *[(name, ctypes.c_void_p) for name in _FIELDS],
    ]


class _Lists:
    """Per-feature lists of (tree, mask) entries, optionally with a threshold to sort on."""

    def __init__(self, n_features: int) -> None:
        self.entries: list[list[tuple[float, int, int]]] = [[] for _ in range(n_features)]

    def add(self, feature: int, tree: int, mask: int, threshold: float = 0.0) -> None:
        self.entries[feature].append((threshold, tree, mask))

    def arrays(self, words: int, prefix: str, sort: bool) -> dict[str, np.ndarray[Any, Any]]:
        starts: list[int] = [0]
        thresholds: list[float] = []
        trees: list[int] = []
        masks: list[int] = []
        for entries in self.entries:
            for threshold, tree, mask in sorted(entries, key=lambda e: e[0]) if sort else entries:
                thresholds.append(threshold)
                trees.append(tree)
                masks.extend(_words(mask, words))
            starts.append(len(trees))
        # One spare element each, so that no array is empty (its pointer stays valid).
        tables: dict[str, np.ndarray[Any, Any]] = {
            f"{prefix}_start": np.array(starts, np.int64),
            f"{prefix}_tree": np.array([*trees, 0], np.int32),
            f"{prefix}_mask": np.array([*masks, 0], np.uint64),
        }
        if sort:
            tables[f"{prefix}_threshold"] = np.array([*thresholds, 0.0], np.float64)
        return tables


def _words(bits: int, words: int) -> list[int]:
    return [(bits >> (64 * word)) & 0xFFFF_FFFF_FFFF_FFFF for word in range(words)]


def _leaf_order(tree: _Tree) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Return the leaves left to right, and each node's left subtree as a range of them."""
    order: list[int] = []
    left_leaves: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:  # in-order walk without recursion (trees can be deep)
        node, left_done = stack.pop()
        if node < 0:
            order.append(~node)
        elif not left_done:
            left_leaves[node] = (len(order), -1)
            stack.append((node, True))
            stack.append((tree.left_child[node], False))
        else:
            left_leaves[node] = (left_leaves[node][0], len(order))
            stack.append((tree.right_child[node], False))
    return order, left_leaves


def _tables(model: _Model) -> tuple[_Layout, dict[str, np.ndarray[Any, Any]]]:
    """Build the kernel's tables: leaves in order, and the false-node lists per feature."""
    n_features = model.n_features
    words = max((len(tree.leaf_value) + 63) // 64 for tree in model.trees)
    every = (1 << (64 * words)) - 1
    initial: list[int] = []
    leaf_offset: list[int] = []
    leaf_value: list[float] = []
    plain, zero, nan, zero_value = (_Lists(n_features) for _ in range(4))
    categorical: dict[int, list[tuple[int, int, tuple[int, ...]]]] = {}
    for index, tree in enumerate(model.trees):
        leaf_offset.append(len(leaf_value))
        initial.extend(_words((1 << len(tree.leaf_value)) - 1, words))
        if len(tree.leaf_value) == 1:
            leaf_value.append(tree.leaf_value[0])
            continue
        order, left_leaves = _leaf_order(tree)
        leaf_value.extend(tree.leaf_value[leaf] for leaf in order)
        for node, (low, high) in left_leaves.items():
            mask = every & ~(((1 << (high - low)) - 1) << low)  # going right drops the left
            feature, decision = tree.split_feature[node], tree.decision_type[node]
            threshold = tree.threshold[node]
            if decision & 1:  # categorical: the bitset decides; NaN and negatives go right
                category = int(threshold)
                first, last = tree.cat_boundaries[category], tree.cat_boundaries[category + 1]
                bits = tree.cat_threshold[first:last]
                categorical.setdefault(feature, []).append((index, mask, bits))
                continue
            if math.isnan(threshold):
                raise CompilationError("a split has a NaN threshold")
            default_left, missing = bool(decision & 2), (decision >> 2) & 3
            if missing == 1:  # zero is missing, and NaN counts as zero: both go the default way
                zero.add(feature, index, mask, threshold)
                if not default_left:
                    nan.add(feature, index, mask)
                    zero_value.add(feature, index, mask)
            else:
                plain.add(feature, index, mask, threshold)
                # NaN goes the default way (missing type NaN) or is compared as 0.0 (none).
                if (not default_left) if missing == 2 else not (threshold >= 0.0):
                    nan.add(feature, index, mask)
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "initial": np.array(initial, np.uint64),
        "leaf_offset": np.array(leaf_offset, np.int64),
        "leaf_value": np.array(leaf_value, np.float64),
        **plain.arrays(words, "plain", sort=True),
        **zero.arrays(words, "zero", sort=True),
        **nan.arrays(words, "nan", sort=False),
        **zero_value.arrays(words, "zeroval", sort=False),
        **_categorical_arrays(categorical, n_features, words),
    }
    layout = _Layout(
        n_features,
        len(model.trees),
        model.n_outputs,
        words,
        _TRANSFORMS[model.transform],
        0,
        model.sigmoid,
        *[arrays[name].ctypes.data for name in _FIELDS],
    )
    return layout, arrays


def _categorical_arrays(
    categorical: Mapping[int, list[tuple[int, int, tuple[int, ...]]]], n_features: int, words: int
) -> dict[str, np.ndarray[Any, Any]]:
    """One list per (feature, category) of the nodes that send it right, then the others'.

    Categories run from 0 to 32 times the longest bitset on the feature; any other value (NaN,
    negative, larger) sends the row right at every categorical node of the feature.
    """
    size = sum(
        len(nodes) * 32 * max(len(bits) for _, _, bits in nodes) for nodes in categorical.values()
    )
    if size * words > _MAX_CATEGORY_WORDS:
        raise CompilationError(
            f"the categorical tables would hold {size * words:,} mask words "
            f"(more than {_MAX_CATEGORY_WORDS:,})"
        )
    base: list[int] = [0]
    starts: list[int] = [0]
    trees: list[int] = []
    masks: list[int] = []
    for feature in range(n_features):
        nodes = categorical.get(feature, [])
        if not nodes:
            base.append(base[-1])
            continue
        count = 32 * max(len(bits) for _, _, bits in nodes)
        for category in range(count):
            word, bit = divmod(category, 32)
            for tree, mask, bits in nodes:
                if not (word < len(bits) and (bits[word] >> bit) & 1):
                    trees.append(tree)
                    masks.extend(_words(mask, words))
            starts.append(len(trees))
        for tree, mask, _ in nodes:
            trees.append(tree)
            masks.extend(_words(mask, words))
        starts.append(len(trees))
        base.append(base[-1] + count + 1)
    return {
        "cat_base": np.array(base, np.int64),
        "cat_start": np.array(starts, np.int64),
        "cat_tree": np.array([*trees, 0], np.int32),
        "cat_mask": np.array([*masks, 0], np.uint64),
    }


def kernel_source() -> str:
    """Return the C source of the evaluator (``trees.c``, shipped with the package)."""
    from importlib.resources import files

    return files("shipyard.runtime").joinpath("trees.c").read_text(encoding="utf-8")


def default_cache_dir() -> Path:
    """``$SHIPYARD_CACHE_DIR/compiled``, else the user's cache folder ``shipyard/compiled``."""
    configured = os.environ.get("SHIPYARD_CACHE_DIR")
    if configured:
        return Path(configured) / "compiled"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard" / "compiled"


def _compiler() -> tuple[str, str]:
    """Return the C compiler's command and its version line (part of the cache key)."""
    command = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not command:
        raise CompilationError("no C compiler found (set CC or install gcc)")
    try:
        version = subprocess.run(
            [command, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as error:
        raise CompilationError(f"the C compiler '{command}' does not run: {error}") from error
    return command, (version[0] if version else command)


class CompiledTrees:
    """A LightGBM model on the compiled kernel: scores rows exactly as LightGBM's ``predict``.

    Parameters
    ----------
    library
        The verified bytes of the kernel's shared library.
    model_text
        The LightGBM text model.
    threads
        Threads to split large batches over (default: the CPUs this process may use).

    Raises
    ------
    CompilationError
        When the model uses something the kernel cannot reproduce exactly.
    """

    def __init__(self, library: bytes, model_text: str, threads: int | None = None) -> None:
        model = _parse(model_text)
        self._layout, self._arrays = _tables(model)  # the arrays back the layout's pointers
        self._raw_layout = _Layout.from_buffer_copy(self._layout)
        self._raw_layout.transform = _TRANSFORMS["identity"]
        self.n_features = model.n_features
        self.n_outputs = model.n_outputs
        self.n_trees = len(model.trees)
        self.threads = threads or _usable_cpus()
        # Load a private copy: dlopen hands back an already-loaded library by path, and the
        # cache file may be replaced while this process runs.
        handle, name = tempfile.mkstemp(suffix=".so", prefix="shipyard-trees-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(library)
            self._library = ctypes.CDLL(name)
        finally:
            os.unlink(name)
        self._predict = self._library.shipyard_predict
        self._predict.restype = None
        self._predict.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]

    def _run(
        self, layout: _Layout, rows: FloatArray, out: FloatArray, start: int, stop: int
    ) -> None:
        # Scratch per call: the leaf masks of every tree and one sum per output.
        leaves = np.empty(self.n_trees * self._layout.words, dtype=np.uint64)
        sums = np.empty(self.n_outputs, dtype=np.float64)
        self._predict(
            ctypes.addressof(layout),
            rows.ctypes.data + start * rows.strides[0],
            ctypes.c_int64(stop - start),
            out.ctypes.data + start * out.strides[0],
            leaves.ctypes.data,
            sums.ctypes.data,
        )

    def predict(self, features: FloatArray, raw_score: bool = False) -> FloatArray:
        """Return ``n x n_outputs`` outputs (a vector when there is one output).

        ``raw_score`` returns the sums of the trees before the objective's transform, as
        ``Booster.predict(raw_score=True)`` does.

        Raises
        ------
        ValueError
            When ``features`` is not a 2-D array with the model's number of columns.
        """
        rows = np.ascontiguousarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(
                f"The compiled model expects rows of {self.n_features} features, "
                f"got an array of shape {rows.shape}."
            )
        count = rows.shape[0]
        out = np.empty((count, self.n_outputs), dtype=np.float64)
        layout = self._raw_layout if raw_score else self._layout
        parts = min(self.threads, max(count // _ROWS_PER_THREAD, 1))
        if parts == 1:
            self._run(layout, rows, out, 0, count)
        else:
            bounds = np.linspace(0, count, parts + 1).astype(int).tolist()
            with concurrent.futures.ThreadPoolExecutor(parts) as pool:
                jobs = [
                    pool.submit(self._run, layout, rows, out, start, stop)
                    for start, stop in itertools.pairwise(bounds)
                ]
                for job in jobs:
                    job.result()
        return out[:, 0] if self.n_outputs == 1 else out


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux: the CPUs this process may use
    return max(len(affinity(0)) if affinity is not None else (os.cpu_count() or 1), 1)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _build(source: str, compiler: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="shipyard-compile-") as folder:
        source_path, library_path = Path(folder) / "trees.c", Path(folder) / "trees.so"
        source_path.write_text(source, encoding="utf-8")
        command = [compiler, *CFLAGS, str(source_path), "-o", str(library_path), "-lm"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as error:
            raise CompilationError(f"the C compiler failed to run: {error}") from error
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CompilationError(f"the C compiler failed: {' | '.join(detail)}")
        return library_path.read_bytes()


@dataclass(frozen=True)
class CompileReport:
    """How :func:`compile_model` got its library."""

    key: str
    cached: bool
    seconds: float


def compile_model(
    model_text: str, cache_dir: Path | None = None
) -> tuple[CompiledTrees, CompileReport]:
    """Put a LightGBM text model on the compiled kernel (built once, then from the cache).

    Raises
    ------
    CompilationError
        When the model is not supported, no compiler runs, or the build fails.
    """
    if os.environ.get("SHIPYARD_COMPILED_TREES", "1") == "0":
        raise CompilationError("compiled trees are turned off (SHIPYARD_COMPILED_TREES=0)")
    started = time.perf_counter()
    _parse(model_text)  # refuse an unsupported model before looking for a compiler
    source = kernel_source()
    compiler, version = _compiler()
    # The kernel is the same for every model: a new kernel source, compiler or flags make a
    # new library.
    key = hashlib.sha256(
        "\n".join([GENERATOR_VERSION, version, " ".join(CFLAGS), source]).encode("utf-8")
    ).hexdigest()
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    library_path, record_path = folder / f"{key}.so", folder / f"{key}.json"
    library = _read_cached(library_path, record_path)
    cached = library is not None
    if library is None:
        library = _build(source, compiler)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(library_path, library)
            record = {
                "library_sha256": hashlib.sha256(library).hexdigest(),
                "generator": GENERATOR_VERSION,
                "compiler": version,
                "flags": list(CFLAGS),
                "source_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            }
            _write_atomically(record_path, json.dumps(record, indent=2).encode("utf-8"))
        except OSError as error:  # a read-only cache still scores, it only rebuilds next time
            logger.warning("Could not cache the compiled kernel in %s: %s", folder, error)
    trees = CompiledTrees(library, model_text)
    return trees, CompileReport(key, cached, time.perf_counter() - started)


def _read_cached(library_path: Path, record_path: Path) -> bytes | None:
    """Return the cached library's bytes when its hash matches its record, else ``None``."""
    try:
        record = json.loads(record_path.read_bytes())
        library = library_path.read_bytes()
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, Mapping)
        or record.get("library_sha256") != hashlib.sha256(library).hexdigest()
    ):
        logger.warning(
            "Compiled model %s does not match its recorded hash; rebuilding", library_path
        )
        return None
    return library


def load_compiled(model_text: str, cache_dir: Path | None = None) -> CompiledTrees | None:
    """Return the compiled evaluator, or ``None`` (with a log line saying why) to use LightGBM."""
    try:
        trees, report = compile_model(model_text, cache_dir)
    except CompilationError as error:
        logger.info("Scoring with LightGBM's predict, not compiled trees: %s", error)
        return None
    except OSError as error:  # loading the library failed (a foreign or broken file)
        logger.warning("Scoring with LightGBM's predict, compiled trees failed to load: %s", error)
        return None
    logger.info(
        "Scoring with compiled trees (kernel %s, %s in %.1f s)",
        report.key[:12],
        "from the cache" if report.cached else "built",
        report.seconds,
    )
    return trees


def compile_scorer(scorer: Any, cache_dir: Path | None = None) -> bool:
    """Compile every LightGBM model inside ``scorer``; return whether any now runs compiled.

    ``scorer`` may be a :class:`~shipyard.runtime.models.LightGBMScorer`, a scorer wrapping one
    (``inner``, as the single-row fast path does) or an ensemble (``members``). Other scorers
    are left as they are.
    """
    from shipyard.runtime.models import LightGBMScorer

    if isinstance(scorer, LightGBMScorer):
        return scorer.compile(cache_dir)
    inner = getattr(scorer, "inner", None)
    if inner is not None:
        return compile_scorer(inner, cache_dir)
    members = getattr(scorer, "members", None) or []
    results = [compile_scorer(member[0], cache_dir) for member in members]
    return any(results)
