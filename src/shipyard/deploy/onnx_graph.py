"""Build one ONNX graph from a tabular bundle: the compiled preprocessing, then the model.

The graph is written with standard operators only (``ai.onnx`` and ``ai.onnx.ml``), by hand
from the bundle's JSON, so it runs in any ONNX Runtime without custom operators:

- one input per column the preprocessing reads: numbers as ``double`` ``[N, 1]``, categories as
  ``string`` ``[N, 1]`` (a missing category is the string ``"(missing)"``, which is how the
  compiled preprocessing keys it too);
- ``numeric`` encoders: ``Where(IsNaN)`` for the fill, then ``Sub`` and ``Div``;
- ``onehot``: ``LabelEncoder`` (category to position, ``-1`` when unknown) compared with the
  positions (``Equal``), so an unknown category gives all zeros as the compiled path does;
- ``ordinal``: ``LabelEncoder`` to the category's index, NaN when unknown;
- LightGBM: ``TreeEnsemble`` (``ai.onnx.ml`` 5) on ``double`` features with ``double``
  thresholds, node for node from the text model: ``BRANCH_LEQ`` splits whose missing values go
  where LightGBM sends them, ``BRANCH_MEMBER`` for categorical splits; then LightGBM's sigmoid
  or softmax;
- linear models: ``MatMul`` and ``Add``, then the logistic or softmax link.

The output ``outputs`` is what the bundle's scorer returns: class probabilities ``[N, C]``, or
regression values ``[N]``. Cleaning and the unknown-category policy stay in front of the graph
(:class:`~shipyard.runtime.onnx_graph.OnnxPredictor` runs them), because they are text rules
the bundle's fitted cleaning holds, not arithmetic.

Families converted: ``lightgbm`` (not linear trees, random-forest mode or zero-as-missing
splits) and ``linear``. Others raise :class:`~shipyard.errors.ExportError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import ExportError, require
from shipyard.runtime.bundle_files import bundle_file
from shipyard.runtime.preprocess import MISSING_CATEGORY

__all__ = ["CONVERTED_FORMATS", "OUTPUT", "build_graph"]

CONVERTED_FORMATS = ("lightgbm-text", "linear-json")
OUTPUT = "outputs"
_OPSET = 21
_ML_OPSET = 5
_BRANCH_LEQ, _BRANCH_MEMBER = 0, 6


class _Graph:
    """Nodes, initializers and inputs, named uniquely as they are added."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: Any) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attributes: Any) -> str:
        output = self.name(op.lower())
        self.nodes.append(
            self.helper.make_node(
                op, inputs, [output], name=output, domain=domain or None, **attributes
            )
        )
        return output


def _input(graph: _Graph, column: str, kind: int) -> str:
    from onnx import helper

    graph.inputs.append(helper.make_tensor_value_info(column, kind, ["N", 1]))
    return column


def _encoder(graph: _Graph, encoder: Mapping[str, Any]) -> str:
    """Add one encoder's nodes; return its ``[N, width]`` double output."""
    from onnx import TensorProto

    kind, column = encoder["kind"], encoder["column"]
    if kind == "numeric":
        value = _input(graph, column, TensorProto.DOUBLE)
        if encoder["fill"] is not None:
            fill = graph.constant("fill", np.array(float(encoder["fill"]), np.float64))
            value = graph.node("Where", [graph.node("IsNaN", [value]), fill, value])
        center = graph.constant("center", np.array(float(encoder.get("center", 0.0)), np.float64))
        scale = graph.constant("scale", np.array(float(encoder.get("scale", 1.0)), np.float64))
        return graph.node("Div", [graph.node("Sub", [value, center]), scale])
    text = _input(graph, column, TensorProto.STRING)
    categories = [str(category) for category in encoder["categories"]]
    if kind == "onehot":
        width = len(categories)
        keys, positions = list(categories), list(range(width))
        other = -1
        if encoder.get("infrequent"):
            other = width
            keys += [str(category) for category in encoder["infrequent"]]
            positions += [other] * len(encoder["infrequent"])
            width += 1
        position = graph.node(
            "LabelEncoder",
            [text],
            domain="ai.onnx.ml",
            keys_strings=keys,
            values_int64s=positions,
            default_int64=other,
        )
        every = graph.constant("positions", np.arange(width, dtype=np.int64).reshape(1, width))
        return graph.node("Cast", [graph.node("Equal", [position, every])], to=TensorProto.DOUBLE)
    if kind == "ordinal":
        if MISSING_CATEGORY in categories:
            raise ExportError(
                f"Column '{column}' has a category named {MISSING_CATEGORY!r}, which the ONNX "
                "graph uses for missing values; this model cannot be exported to ONNX."
            )
        index = graph.node(
            "LabelEncoder",
            [text],
            domain="ai.onnx.ml",
            keys_strings=categories,
            values_floats=[float(position) for position in range(len(categories))],
            default_float=math.nan,
        )
        return graph.node("Cast", [index], to=TensorProto.DOUBLE)
    raise ExportError(f"Encoder kind '{kind}' of column '{column}' has no ONNX form.")


def _split_node(tree: Any, node: int) -> tuple[int, float, list[float], int]:
    """Return (mode, threshold, member categories, NaN goes left) of one LightGBM split."""
    decision = tree.decision_type[node]
    threshold = tree.threshold[node]
    if decision & 1:
        category = int(threshold)
        first, last = tree.cat_boundaries[category], tree.cat_boundaries[category + 1]
        members = [
            float(32 * word + bit)
            for word, bits in enumerate(tree.cat_threshold[first:last])
            for bit in range(32)
            if (bits >> bit) & 1
        ]
        # LightGBM truncates to int; NaN and negatives go right, never into the set.
        return _BRANCH_MEMBER, 0.0, members, 0
    default_left, missing = bool(decision & 2), (decision >> 2) & 3
    if missing == 1:
        raise ExportError(
            "The LightGBM model treats zero as missing (zero_as_missing), which the ONNX tree "
            "operator cannot express exactly; it is not exported."
        )
    # Missing type NaN: NaN goes the default way; none: NaN is compared as 0.0.
    nan_left = default_left if missing == 2 else threshold >= 0.0
    return _BRANCH_LEQ, threshold, [], int(nan_left)


def _lightgbm(graph: _Graph, features: str, model_text: str, task: str) -> str:
    from onnx import TensorProto, helper

    from shipyard.runtime.compiled import CompilationError, _parse

    try:
        model = _parse(model_text)
    except CompilationError as error:
        raise ExportError(f"This LightGBM model cannot be exported to ONNX: {error}.") from error
    feature_ids: list[int] = []
    splits: list[float] = []
    modes: list[int] = []
    true_ids: list[int] = []
    true_leafs: list[int] = []
    false_ids: list[int] = []
    false_leafs: list[int] = []
    missing_true: list[int] = []
    members: list[float] = []
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []
    roots: list[int] = []
    for index, tree in enumerate(model.trees):
        target = index % model.n_outputs
        leaf_base = len(leaf_weights)
        leaf_weights.extend(tree.leaf_value)
        leaf_targets.extend([target] * len(tree.leaf_value))
        node_base = len(modes)
        roots.append(node_base)
        if not tree.split_feature:  # one leaf: a split whose both branches reach it
            feature_ids.append(0)
            splits.append(0.0)
            modes.append(_BRANCH_LEQ)
            true_ids.append(leaf_base)
            false_ids.append(leaf_base)
            true_leafs.append(1)
            false_leafs.append(1)
            missing_true.append(0)
            continue
        for node in range(len(tree.split_feature)):
            mode, threshold, categories, nan_left = _split_node(tree, node)
            feature_ids.append(tree.split_feature[node])
            splits.append(threshold)
            modes.append(mode)
            missing_true.append(nan_left)
            if mode == _BRANCH_MEMBER:
                members.extend([*categories, math.nan])
            for child, ids, leafs in (
                (tree.left_child[node], true_ids, true_leafs),
                (tree.right_child[node], false_ids, false_leafs),
            ):
                is_leaf = child < 0
                ids.append(leaf_base + ~child if is_leaf else node_base + child)
                leafs.append(int(is_leaf))
    double = TensorProto.DOUBLE
    attributes: dict[str, Any] = {
        "aggregate_function": 1,  # SUM
        "post_transform": 0,  # NONE: LightGBM's transform follows
        "n_targets": model.n_outputs,
        "tree_roots": roots,
        "nodes_featureids": feature_ids,
        "nodes_splits": helper.make_tensor("splits", double, [len(splits)], splits),
        "nodes_modes": helper.make_tensor("modes", TensorProto.UINT8, [len(modes)], modes),
        "nodes_truenodeids": true_ids,
        "nodes_trueleafs": true_leafs,
        "nodes_falsenodeids": false_ids,
        "nodes_falseleafs": false_leafs,
        "nodes_missing_value_tracks_true": missing_true,
        "leaf_targetids": leaf_targets,
        "leaf_weights": helper.make_tensor("weights", double, [len(leaf_weights)], leaf_weights),
    }
    if members:
        attributes["membership_values"] = helper.make_tensor(
            "members", double, [len(members)], members
        )
    raw = graph.node("TreeEnsemble", [features], domain="ai.onnx.ml", **attributes)
    if model.transform == "identity":
        return _regression_or_probabilities(graph, raw, task, link="identity")
    if model.transform == "sigmoid":
        sigmoid = graph.constant("sigmoid", np.array(model.sigmoid, np.float64))
        return _regression_or_probabilities(
            graph, graph.node("Mul", [raw, sigmoid]), task, link="sigmoid"
        )
    return _regression_or_probabilities(graph, raw, task, link="softmax")


def _linear(graph: _Graph, features: str, payload: str, task: str) -> str:
    data = json.loads(payload)
    coefficients = np.asarray(data["coefficients"], dtype=np.float64)
    intercepts = np.asarray(data["intercepts"], dtype=np.float64)
    weights = graph.constant("coefficients", coefficients.T.copy())
    decision = graph.node(
        "Add",
        [graph.node("MatMul", [features, weights]), graph.constant("intercepts", intercepts)],
    )
    link = {"regression": "identity", "binary": "sigmoid"}.get(task, "softmax")
    return _regression_or_probabilities(graph, decision, task, link=link)


def _regression_or_probabilities(graph: _Graph, raw: str, task: str, link: str) -> str:
    """From ``[N, k]`` raw scores to the scorer's outputs, named :data:`OUTPUT`."""
    if link == "identity":
        flat = graph.constant("shape", np.array([-1], np.int64))
        result = graph.node("Reshape", [raw, flat])
    elif link == "sigmoid":
        positive = graph.node("Sigmoid", [raw])
        one = graph.constant("one", np.array(1.0, np.float64))
        result = graph.node("Concat", [graph.node("Sub", [one, positive]), positive], axis=1)
    else:
        result = graph.node("Softmax", [raw], axis=1)
    graph.nodes.append(graph.helper.make_node("Identity", [result], [OUTPUT], name=OUTPUT))
    return OUTPUT


def build_graph(directory: Path, manifest: Mapping[str, Any], name: str = "shipyard") -> Any:
    """Return the ONNX ``ModelProto`` of a tabular bundle (preprocessing and model).

    Raises
    ------
    ExportError
        When the bundle's model family or an encoder has no ONNX form here.
    MissingDependencyError
        When ``onnx`` is not installed.
    """
    require("onnx", "onnx")
    from onnx import TensorProto, checker, helper

    model = manifest["model"]
    task = str(manifest["task"])
    if model.get("format") not in CONVERTED_FORMATS:
        raise ExportError(
            f"Model family '{model.get('family')}' (format '{model.get('format')}') is not "
            f"exported to ONNX; the families that are: lightgbm, linear. Train one of them "
            "(training.models) to export it."
        )
    spec = json.loads(bundle_file(directory, manifest["preprocessing"]).read_bytes())
    graph = _Graph()
    encoded = [_encoder(graph, encoder) for encoder in spec["encoders"]]
    features = graph.node("Concat", encoded, axis=1) if len(encoded) > 1 else encoded[0]
    payload = bundle_file(directory, model["path"]).read_text(encoding="utf-8")
    if model["format"] == "lightgbm-text":
        _lightgbm(graph, features, payload, task)
    else:
        _linear(graph, features, payload, task)
    classes = manifest.get("classes") or []  # none for a regression
    shape: list[str | int] = ["N", len(classes)] if classes else ["N"]
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, shape)
    built = helper.make_model(
        helper.make_graph(graph.nodes, name, graph.inputs, [output], graph.initializers),
        opset_imports=[
            helper.make_opsetid("", _OPSET),
            helper.make_opsetid("ai.onnx.ml", _ML_OPSET),
        ],
        producer_name="shipyard",
    )
    checker.check_model(built, full_check=True)
    return built
