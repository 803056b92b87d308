"""Exact path-dependent TreeSHAP on a forest stored as shipyard's JSON tree document.

The forest document (``forest-json``, written by :mod:`shipyard.training.export`) holds each
tree's nodes: split feature and threshold, children, where missing values go, the value at the
node and its cover (the training weight that reached it). This module computes the Shapley
values that TreeSHAP (Lundberg et al., 2020, "From local explanations to global understanding
with explainable AI for trees", algorithm 2) computes, with the conditional expectation
approximated along the tree's own paths by the covers, as LightGBM's ``pred_contrib`` and
XGBoost's ``pred_contribs`` do.

Per leaf the game is a product: with ``U`` the distinct features split on along the leaf's
path, ``z_j`` the share of cover that follows the path at the splits on ``j``, and ``o_j`` one
when the row follows every split on ``j`` (else zero), the leaf adds
``value * prod(o_j for j in S) * prod(z_j for j not in S)`` to the expected output given the
features ``S``. Its Shapley value for feature ``i`` is

    value * (o_i - z_i) * sum_k k! (u - 1 - k)! / u! * [t^k] prod_{j != i} (z_j + o_j t)

which is what is computed here, for all leaves of all trees at once (numpy, no Python loop per
node), for a chunk of rows at a time. The contributions of every leaf add up, per tree, to the
tree's output minus its expected output, so ``base + sum(contributions)`` equals the forest's
prediction up to floating point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = ["ForestPaths", "forest_contributions"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Rows x leaves x path features held at once; bounds the memory of one chunk.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class ForestPaths:
    """Every root-to-leaf path of a forest, padded into arrays.

    Attributes
    ----------
    node_feature, node_threshold, node_missing_left
        Per split node of the whole forest (numbered across trees).
    path_node, path_left, path_slot
        Shape (leaves, longest path): the split nodes on each leaf's path, whether the path
        goes left there, and which of the leaf's distinct features the split is on; padding
        points at node 0 with slot ``-1``.
    slot_feature, slot_zero, slot_count
        Shape (leaves, most distinct features): each distinct feature's index (padding 0), its
        cover share ``z`` (padding 1), and the number of distinct features per leaf.
    leaf_value
        Shape (leaves, outputs).
    n_trees
        The forest's size; its output is the mean of its trees.
    """

    node_feature: IntArray
    node_threshold: FloatArray
    node_missing_left: npt.NDArray[np.bool_]
    path_node: IntArray
    path_left: npt.NDArray[np.bool_]
    path_slot: IntArray
    slot_feature: IntArray
    slot_zero: FloatArray
    slot_count: IntArray
    leaf_value: FloatArray
    n_trees: int

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ForestPaths:
        """Collect the paths of every tree of a forest document (which must hold ``cover``)."""
        builder = _PathBuilder()
        for tree in document["trees"]:
            builder.add_tree(tree)
        return builder.build(len(document["trees"]))

    def expected_value(self) -> FloatArray:
        """Return the forest's output averaged over its training cover, per output."""
        reach = np.prod(self.slot_zero, axis=1)
        return np.asarray(reach @ self.leaf_value / self.n_trees, dtype=np.float64)


class _PathBuilder:
    """Walks trees depth first and records, per leaf, the splits on its path."""

    def __init__(self) -> None:
        self.features: list[int] = []
        self.thresholds: list[float] = []
        self.missing_left: list[bool] = []
        self.leaves: list[tuple[list[tuple[int, bool, int]], dict[int, float], list[float]]] = []

    def add_tree(self, tree: Mapping[str, Any]) -> None:
        left, right = tree["left"], tree["right"]
        cover = [float(value) for value in tree["cover"]]
        values = np.asarray(tree["value"], dtype=np.float64).reshape(len(left), -1)
        split_index: dict[int, int] = {}
        for node in range(len(left)):
            if left[node] >= 0:
                split_index[node] = len(self.features)
                self.features.append(int(tree["feature"][node]))
                self.thresholds.append(float(tree["threshold"][node]))
                self.missing_left.append(bool(tree["missing_left"][node]))
        # (node, splits so far as (global split, went left, feature), cover shares by feature)
        stack: list[tuple[int, list[tuple[int, bool, int]], dict[int, float]]] = [(0, [], {})]
        while stack:
            node, splits, zero = stack.pop()
            if left[node] < 0:
                self.leaves.append((splits, zero, values[node].tolist()))
                continue
            feature = int(tree["feature"][node])
            for child, went_left in ((left[node], True), (right[node], False)):
                share = cover[child] / cover[node] if cover[node] > 0 else 0.0
                shares = dict(zero)
                shares[feature] = shares.get(feature, 1.0) * share
                stack.append((child, [*splits, (split_index[node], went_left, feature)], shares))

    def build(self, n_trees: int) -> ForestPaths:
        n_leaves = len(self.leaves)
        longest = max((len(splits) for splits, _, _ in self.leaves), default=0) or 1
        widest = max((len(zero) for _, zero, _ in self.leaves), default=0) or 1
        path_node = np.zeros((n_leaves, longest), dtype=np.int64)
        path_left = np.zeros((n_leaves, longest), dtype=bool)
        path_slot = np.full((n_leaves, longest), -1, dtype=np.int64)
        slot_feature = np.zeros((n_leaves, widest), dtype=np.int64)
        slot_zero = np.ones((n_leaves, widest), dtype=np.float64)
        slot_count = np.zeros(n_leaves, dtype=np.int64)
        leaf_value = np.array([value for _, _, value in self.leaves], dtype=np.float64)
        for leaf, (splits, zero, _) in enumerate(self.leaves):
            slots = {feature: index for index, feature in enumerate(zero)}
            slot_count[leaf] = len(zero)
            slot_feature[leaf, : len(zero)] = list(zero)
            slot_zero[leaf, : len(zero)] = list(zero.values())
            for position, (split, went_left, feature) in enumerate(splits):
                path_node[leaf, position] = split
                path_left[leaf, position] = went_left
                path_slot[leaf, position] = slots[feature]
        return ForestPaths(
            node_feature=np.asarray(self.features or [0], dtype=np.int64),
            node_threshold=np.asarray(self.thresholds or [0.0], dtype=np.float64),
            node_missing_left=np.asarray(self.missing_left or [False], dtype=bool),
            path_node=path_node,
            path_left=path_left,
            path_slot=path_slot,
            slot_feature=slot_feature,
            slot_zero=slot_zero,
            slot_count=slot_count,
            leaf_value=leaf_value.reshape(n_leaves, -1),
            n_trees=n_trees,
        )


def _shapley_weights(slot_count: IntArray, widest: int) -> FloatArray:
    """Return ``k! (u - 1 - k)! / u!`` by ``k`` (rows) and leaf (``u`` its distinct features).

    Zero where ``k >= u``.
    """
    table = np.zeros((int(slot_count.max(initial=0)) + 1, widest), dtype=np.float64)
    for size in range(1, table.shape[0]):
        for k in range(min(size, widest)):
            table[size, k] = factorial(k) * factorial(size - 1 - k) / factorial(size)
    return np.ascontiguousarray(table[slot_count].T)


def _follows(paths: ForestPaths, rows: FloatArray) -> FloatArray:
    """Shape (distinct features, rows, leaves): 1 where the row follows every split on it."""
    # The trees compare features as 32-bit floats, as scikit-learn and the scorer do.
    values = rows.astype(np.float32).astype(np.float64)[:, paths.node_feature]
    go_left = np.where(np.isnan(values), paths.node_missing_left, values <= paths.node_threshold)
    n_leaves, widest = paths.slot_feature.shape
    real_position = paths.path_slot >= 0
    # Each split on the path counts against its (leaf, distinct feature) cell when it strays.
    cell = (np.arange(n_leaves)[:, None] * widest + paths.path_slot)[real_position]
    nodes, lefts = paths.path_node[real_position], paths.path_left[real_position]
    one = np.empty((widest, len(rows), n_leaves), dtype=np.float64)
    real = np.arange(widest)[:, None] < paths.slot_count[None, :]
    for row in range(len(rows)):
        strays = np.bincount(
            cell, weights=go_left[row, nodes] != lefts, minlength=n_leaves * widest
        )
        one[:, row, :] = (strays.reshape(n_leaves, widest).T == 0) & real
    return one


def _leaf_shapley(paths: ForestPaths, one: FloatArray, weights: FloatArray) -> FloatArray:
    """Shapley value of each distinct feature of each leaf's product game, before its value.

    Arrays are laid out distinct feature (or power of ``t``) first, so every step works on
    contiguous (rows, leaves) planes.
    """
    zero = np.ascontiguousarray(paths.slot_zero.T)[:, None, :]  # widest x 1 x leaves
    widest, n_rows, n_leaves = one.shape
    # The polynomial prod_j (z_j + o_j t), coefficients by power of t; padding multiplies by 1.
    product = np.zeros((widest + 1, n_rows, n_leaves), dtype=np.float64)
    product[0] = 1.0
    for slot in range(widest):
        for power in range(slot + 1, 0, -1):
            product[power] = product[power] * zero[slot] + product[power - 1] * one[slot]
        product[0] *= zero[slot]
    # Dividing by z_i (o_i = 0) is the same for every power: one weighted sum serves all slots.
    weighted = np.einsum("krl,kl->rl", product[:widest], weights)
    result = np.zeros_like(one)
    for slot in range(widest):
        z, o = zero[slot], one[slot]
        # Divide out (z_i + t) by synthetic division where o_i is 1.
        carry = product[widest]
        total = carry * weights[widest - 1]
        for power in range(widest - 1, 0, -1):
            carry = product[power] - z * carry
            total += carry * weights[power - 1]
        result[slot] = (o - z) * np.where(o > 0, total, weighted / z)
    real = np.arange(widest)[:, None] < paths.slot_count[None, :]
    return np.where(real[:, None, :], result, 0.0)


def forest_contributions(
    paths: ForestPaths, rows: FloatArray, n_features: int
) -> tuple[FloatArray, FloatArray]:
    """TreeSHAP contributions of each encoded feature, per row and output.

    Parameters
    ----------
    paths
        The forest's paths (:meth:`ForestPaths.from_document`).
    rows
        Encoded rows, shape (rows, features).
    n_features
        The width of ``rows``.

    Returns
    -------
    contributions, base
        Shapes (rows, features, outputs) and (outputs,): the base is the forest's expected
        output, and ``base + contributions.sum(1)`` is the forest's output.
    """
    n_leaves, widest = paths.slot_feature.shape
    weights = _shapley_weights(paths.slot_count, widest)
    scatter = sparse.csr_matrix(
        (
            np.ones(n_leaves * widest),
            (np.arange(n_leaves * widest), paths.slot_feature.reshape(-1)),
        ),
        shape=(n_leaves * widest, n_features),
    )
    n_outputs = paths.leaf_value.shape[1]
    out = np.zeros((len(rows), n_features, n_outputs), dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // max(1, n_leaves * widest))
    for start in range(0, len(rows), chunk):
        block = np.asarray(rows[start : start + chunk], dtype=np.float64)
        # rows x leaves x distinct features, to match the scatter's (leaf, slot) order
        shapley = _leaf_shapley(paths, _follows(paths, block), weights).transpose(1, 2, 0)
        for output in range(n_outputs):
            valued = shapley * paths.leaf_value[None, :, output, None]
            flat = valued.reshape(len(block), n_leaves * widest)
            out[start : start + len(block), :, output] = np.asarray((scatter.T @ flat.T).T)
    return out / paths.n_trees, paths.expected_value()
