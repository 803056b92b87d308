"""LightGBM trees compiled to C: the batch path's exact, faster evaluator.

:func:`generate_source` turns a LightGBM text model into C that mirrors LightGBM's own
prediction arithmetic step for step, so its answers are LightGBM's to the last bit (the tests
compare them with ``np.array_equal``):

- a feature value with ``|x| <= 1e-35`` becomes ``0.0``, as LightGBM's dense-row reader does;
- numerical splits follow ``Tree::NumericalDecision``: NaN becomes ``0.0`` unless the split's
  missing type is NaN; a *zero* missing type sends ``|x| <= 1e-35`` the default way, a *NaN*
  one sends NaN the default way; otherwise ``x <= threshold`` (the double from the text model);
- categorical splits follow ``Tree::CategoricalDecision``: the value is truncated to ``int``
  (NaN and values outside the ``int`` range give a negative number, as the x86-64 conversion
  LightGBM runs does), negative goes right, otherwise the bitset decides;
- each output is a sequential ``double`` sum of its trees' leaf values in training order,
  starting from ``0.0`` (``GBDT::PredictRaw``); then the objective's transform with the C
  library's ``exp``: ``1 / (1 + exp(-sigmoid * x))`` for ``binary``, LightGBM's max-shifted
  softmax for ``multiclass``, the identity for the regression objectives.

The C is compiled with ``-O2 -ffp-contract=off`` (no fast-math: no reassociation, no fused
multiply-add) by the system C compiler, ``$CC`` or ``cc``, into a shared library loaded with
:mod:`ctypes`. Rows are split over threads (``ctypes`` releases the GIL); each row is scored on
its own, so an answer never depends on how rows were batched or split.

Libraries are cached per model: the key is the SHA-256 of the model text, the generator version
and the compiler's version line. The cache holds ``KEY.so`` and ``KEY.json`` (the library's
SHA-256), both written to a temporary name and renamed; a library whose hash does not match is
rebuilt. The cache is ``$SHIPYARD_CACHE_DIR/compiled``, else
``$XDG_CACHE_HOME/shipyard/compiled`` (``~/.cache/shipyard/compiled``), never inside a bundle,
whose files are immutable and hashed.

Anything this module cannot do exactly (a linear-tree model, an objective without a known
transform, ``average_output``) or at all (no C compiler, a failed build) raises
:class:`CompilationError`; :func:`load_compiled` turns that into a log line and ``None``, and the
caller keeps LightGBM's own predict.
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
    "default_cache_dir",
    "generate_source",
    "load_compiled",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
"""Part of the cache key: bump it whenever the generated C changes."""

CFLAGS = ("-O2", "-fPIC", "-shared", "-fno-fast-math", "-ffp-contract=off")
"""No fast-math and no contraction: the C must round exactly as LightGBM's C++ does."""

_IDENTITY_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
)
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
    """What the generated C needs from a LightGBM text model."""

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


def _literal(value: float) -> str:
    """Write ``value`` as a C literal that reads back exactly (hexadecimal floating point)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return value.hex()


_PRELUDE = """\
#include <math.h>
#include <stdint.h>
#include <string.h>

/* LightGBM's kZeroThreshold: const double kZeroThreshold = 1e-35f; */
static const double ZERO = (double)1e-35f;

static inline int is_zero(double v) { return v >= -ZERO && v <= ZERO; }

/* static_cast<int>(v) as x86-64 runs it: NaN and out-of-range values give INT_MIN. */
static inline int to_int(double v) {
    if (!(v > -2147483649.0 && v < 2147483648.0)) return -1;
    return (int)v;
}

static inline int in_bitset(const uint32_t* bits, int words, double v) {
    int position = to_int(v);
    if (position < 0) return 0;
    if (position / 32 >= words) return 0;
    return (int)((bits[position / 32] >> (position % 32)) & 1u);
}
"""


def _condition(tree: _Tree, node: int, sets: list[str], name: str) -> str:
    """Return the C expression that is true when ``node`` sends the row left."""
    value = f"x[{tree.split_feature[node]}]"
    decision = tree.decision_type[node]
    default_left = bool(decision & 2)
    missing = (decision >> 2) & 3
    if decision & 1:  # categorical: NaN and negatives go right whatever the missing type
        category = int(tree.threshold[node])
        start, stop = tree.cat_boundaries[category], tree.cat_boundaries[category + 1]
        words = tree.cat_threshold[start:stop]
        array = f"{name}_set{node}"
        sets.append(
            f"static const uint32_t {array}[{max(len(words), 1)}] = "
            f"{{{', '.join(f'{word}u' for word in words) or '0u'}}};"
        )
        return f"in_bitset({array}, {len(words)}, {value})"
    threshold = _literal(tree.threshold[node])
    # "!(x > t)" is "x <= t or x is NaN" in one comparison.
    if missing == 2:  # NaN is missing: it goes the default way
        return f"!({value} > {threshold})" if default_left else f"{value} <= {threshold}"
    if missing == 1:  # zero is missing; NaN counts as zero
        if default_left:
            return f"(isnan({value}) || is_zero({value}) || {value} <= {threshold})"
        return f"(!isnan({value}) && !is_zero({value}) && {value} <= {threshold})"
    # No missing type: NaN is compared as 0.0.
    if tree.threshold[node] >= 0.0:
        return f"!({value} > {threshold})"
    return f"{value} <= {threshold}"


def _tree_function(tree: _Tree, index: int) -> str:
    name = f"tree{index}"
    if len(tree.leaf_value) <= 1:
        leaf = _literal(tree.leaf_value[0])
        return f"static double {name}(const double* x) {{ (void)x; return {leaf}; }}\n"
    sets: list[str] = []
    lines: list[str] = []

    def emit(child: int, depth: int) -> None:
        pad = "    " * depth
        if child < 0:
            lines.append(f"{pad}return {_literal(tree.leaf_value[~child])};")
            return
        lines.append(f"{pad}if ({_condition(tree, child, sets, name)}) {{")
        emit(tree.left_child[child], depth + 1)
        lines.append(f"{pad}}} else {{")
        emit(tree.right_child[child], depth + 1)
        lines.append(f"{pad}}}")

    emit(0, 1)
    body = "\n".join(lines)
    return "\n".join([*sets, f"static double {name}(const double* x) {{", body, "}", ""])


def generate_source(model_text: str) -> str:
    """Return the C source of a LightGBM text model's exact evaluator.

    The library exports ``shipyard_predict(const double* rows, int64_t n, double* out)``:
    ``rows`` is C-ordered ``n x n_features``, ``out`` receives ``n x n_outputs`` transformed
    outputs (probabilities of the positive class, class probabilities, or values).

    Raises
    ------
    CompilationError
        When the model uses something the generator cannot reproduce exactly.
    """
    model = _parse(model_text)
    features, outputs = model.n_features, model.n_outputs
    parts = [_PRELUDE]
    parts.extend(_tree_function(tree, index) for index, tree in enumerate(model.trees))
    table = ", ".join(f"tree{index}" for index in range(len(model.trees)))
    parts.append(f"static double (*const TREES[{len(model.trees)}])(const double*) = {{{table}}};")
    if model.transform == "sigmoid":
        finish = (
            f"        for (int r = 0; r < m; r++) out[(start + r)] = "
            f"1.0 / (1.0 + exp(-{_literal(model.sigmoid)} * sum[r]));"
        )
    elif model.transform == "softmax":
        finish = f"""\
        for (int r = 0; r < m; r++) {{
            const double* input = sum + (int64_t)r * {outputs};
            double* output = out + (start + r) * {outputs};
            double wmax = input[0];
            for (int k = 1; k < {outputs}; k++) wmax = input[k] > wmax ? input[k] : wmax;
            double wsum = 0.0;
            for (int k = 0; k < {outputs}; k++) {{
                output[k] = exp(input[k] - wmax);
                wsum += output[k];
            }}
            for (int k = 0; k < {outputs}; k++) output[k] /= wsum;
        }}"""
    else:
        size = f"sizeof(double) * (size_t)m * {outputs}"
        finish = f"        memcpy(out + start * {outputs}, sum, {size});"
    parts.append(f"""
int shipyard_n_features(void) {{ return {features}; }}
int shipyard_n_outputs(void) {{ return {outputs}; }}

#define BLOCK 64
void shipyard_predict(const double* rows, int64_t n, double* out) {{
    double x[BLOCK * {features}];
    double sum[BLOCK * {outputs}];
    for (int64_t start = 0; start < n; start += BLOCK) {{
        int m = (int)(n - start < BLOCK ? n - start : BLOCK);
        for (int i = 0; i < m * {features}; i++) {{
            double v = rows[start * {features} + i];
            x[i] = fabs(v) <= ZERO ? 0.0 : v;  /* NaN stays NaN */
        }}
        for (int i = 0; i < m * {outputs}; i++) sum[i] = 0.0;
        /* Tree by tree over the block (the tree's code stays in cache); each row's sums still
           add its trees in training order, one double at a time. */
        for (int t = 0; t < {len(model.trees)}; t++) {{
            double (*const tree)(const double*) = TREES[t];
            const int k = t % {outputs};
            for (int r = 0; r < m; r++) sum[r * {outputs} + k] += tree(x + r * {features});
        }}
{finish}
    }}
}}
""")
    return "\n".join(parts)


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
    """A loaded compiled model: score float64 rows exactly as LightGBM's ``predict`` does.

    Parameters
    ----------
    library
        The verified bytes of the shared library.
    threads
        Threads to split large batches over (default: the CPUs this process may use).
    """

    def __init__(self, library: bytes, threads: int | None = None) -> None:
        # Load a private copy: dlopen returns an already-loaded library by path, and the cache
        # file may be replaced while this process runs.
        handle, name = tempfile.mkstemp(suffix=".so", prefix="shipyard-trees-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(library)
            self._library = ctypes.CDLL(name)
        finally:
            os.unlink(name)
        self._predict = self._library.shipyard_predict
        self._predict.restype = None
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self.n_features = int(self._library.shipyard_n_features())
        self.n_outputs = int(self._library.shipyard_n_outputs())
        self.threads = threads or max(len(os.sched_getaffinity(0)), 1)

    def _run(self, rows: FloatArray, out: FloatArray, start: int, stop: int) -> None:
        self._predict(
            rows.ctypes.data + start * rows.strides[0],
            ctypes.c_int64(stop - start),
            out.ctypes.data + start * out.strides[0],
        )

    def predict(self, features: FloatArray) -> FloatArray:
        """Return ``n x n_outputs`` outputs (a vector when there is one output).

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
        parts = min(self.threads, max(count // _ROWS_PER_THREAD, 1))
        if parts == 1:
            self._run(rows, out, 0, count)
        else:
            bounds = np.linspace(0, count, parts + 1).astype(int).tolist()
            with concurrent.futures.ThreadPoolExecutor(parts) as pool:
                jobs = [
                    pool.submit(self._run, rows, out, start, stop)
                    for start, stop in itertools.pairwise(bounds)
                ]
                for job in jobs:
                    job.result()
        return out[:, 0] if self.n_outputs == 1 else out


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
    """Compile (or load from the cache) the exact evaluator of a LightGBM text model.

    Raises
    ------
    CompilationError
        When the model is not supported, no compiler runs, or the build fails.
    """
    if os.environ.get("SHIPYARD_COMPILED_TREES", "1") == "0":
        raise CompilationError("compiled trees are turned off (SHIPYARD_COMPILED_TREES=0)")
    started = time.perf_counter()
    source = generate_source(model_text)
    compiler, version = _compiler()
    # The generated source stands for the model and the generator; a new compiler or new flags
    # make a new library too.
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
                "model_sha256": hashlib.sha256(model_text.encode("utf-8")).hexdigest(),
            }
            _write_atomically(record_path, json.dumps(record, indent=2).encode("utf-8"))
        except OSError as error:  # a read-only cache still scores, it only rebuilds next time
            logger.warning("Could not cache the compiled model in %s: %s", folder, error)
    trees = CompiledTrees(library)
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
        "Compiled trees %s (%s in %.1f s)",
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
