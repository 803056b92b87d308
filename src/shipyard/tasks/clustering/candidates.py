"""Clustering candidates and how one is chosen: silhouette, and stability across seeds.

Every candidate (k-means for each ``k``, HDBSCAN for each ``min_cluster_size``) is fitted on
a seeded sample of the training rows and scored twice:

- **silhouette**: how much closer rows are to their own cluster than to the next one (HDBSCAN's
  noise rows left out); higher is better, at most 1;
- **stability**: the candidate is refitted ``seeds`` times, each on a different 90% subsample
  with a different seed, and the adjusted Rand index between every two fits is averaged over
  the rows both saw. 1 means the same partition every time; near 0, chance agreement.

The chosen candidate has the best silhouette among those at least ``min_stability`` stable
(when none is, the most stable one): a high silhouette that a new seed would not reproduce is
not a structure of the data.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from shipyard.config import ClusteringConfig

__all__ = ["Candidate", "choose", "fit_labels", "search"]

Matrix = npt.NDArray[np.float64]
SUBSAMPLE = 0.9


@dataclass
class Candidate:
    """One setting of one family, scored on the selection sample."""

    family: str
    params: dict[str, int]
    silhouette: float = float("nan")
    stability: float = float("nan")
    agreements: list[float] = field(default_factory=list)
    clusters: int = 0
    noise: float = 0.0
    seconds: float = 0.0
    message: str = ""

    @property
    def name(self) -> str:
        """``kmeans_k4``, ``hdbscan_m50``."""
        key, value = next(iter(self.params.items()))
        return f"{self.family}_{'k' if key == 'k' else 'm'}{value}"

    @property
    def ok(self) -> bool:
        """Whether the candidate found at least two clusters and was scored."""
        return not math.isnan(self.silhouette) and not math.isnan(self.stability)


def make_model(family: str, params: dict[str, int], seed: int) -> Any:
    """Return the scikit-learn estimator of a candidate."""
    if family == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=params["k"], n_init=4, random_state=seed)
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=params["min_cluster_size"], copy=True)


def fit_labels(family: str, params: dict[str, int], rows: Matrix, seed: int) -> Any:
    """Fit a candidate on ``rows``; return the fitted estimator."""
    model = make_model(family, params, seed)
    model.fit(rows)
    return model


def _silhouette(rows: Matrix, labels: npt.NDArray[np.int64]) -> float:
    from sklearn.metrics import silhouette_score

    kept = labels >= 0
    if len(set(labels[kept].tolist())) < 2:
        return float("nan")
    return float(silhouette_score(rows[kept], labels[kept]))


def _stability(
    family: str, params: dict[str, int], rows: Matrix, seeds: int, seed: int
) -> list[float]:
    """Return the adjusted Rand index between fits on seeded subsamples (rows both saw)."""
    from sklearn.metrics import adjusted_rand_score

    fits: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for offset in range(seeds):
        generator = np.random.default_rng(seed + 1 + offset)
        chosen = np.sort(generator.choice(len(rows), int(SUBSAMPLE * len(rows)), replace=False))
        labels = fit_labels(family, params, rows[chosen], seed + 1 + offset).labels_
        fits.append((chosen, np.asarray(labels)))
    agreements = []
    for (first, first_labels), (second, second_labels) in itertools.combinations(fits, 2):
        _, in_first, in_second = np.intersect1d(first, second, return_indices=True)
        agreements.append(
            float(adjusted_rand_score(first_labels[in_first], second_labels[in_second]))
        )
    return agreements


def _settings(settings: ClusteringConfig) -> list[tuple[str, dict[str, int]]]:
    found: list[tuple[str, dict[str, int]]] = []
    for family in settings.methods:
        if family == "kmeans":
            found += [("kmeans", {"k": k}) for k in settings.k_values]
        else:
            found += [("hdbscan", {"min_cluster_size": m}) for m in settings.min_cluster_sizes]
    return found


def _too_many(params: dict[str, int], rows: int) -> str:
    """Say why a setting cannot be fitted on ``rows`` sampled rows (empty when it can)."""
    if params.get("k", 0) >= rows:
        return f"k={params['k']} is not below the {rows} sampled rows"
    if params.get("min_cluster_size", 0) > rows // 2:
        return f"min_cluster_size={params['min_cluster_size']} leaves no room for two clusters"
    return ""


def search(rows: Matrix, settings: ClusteringConfig, seed: int, report: Any) -> list[Candidate]:
    """Score every candidate on ``rows`` (the selection sample), on one thread.

    k-means' OpenMP threads cost far more than they save on a sample this small, above all on
    a busy machine, where they wait for each other.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _search(rows, settings, seed, report)


def _search(rows: Matrix, settings: ClusteringConfig, seed: int, report: Any) -> list[Candidate]:
    candidates = []
    for family, params in _settings(settings):
        started = time.perf_counter()
        candidate = Candidate(family, params)
        too_many = _too_many(params, len(rows))
        if too_many:
            candidate.message = too_many
            candidates.append(candidate)
            continue
        labels = np.asarray(fit_labels(family, params, rows, seed).labels_)
        candidate.clusters = len(set(labels[labels >= 0].tolist()))
        candidate.noise = float(np.mean(labels < 0))
        candidate.silhouette = _silhouette(rows, labels)
        if math.isnan(candidate.silhouette):
            candidate.message = f"found {candidate.clusters} cluster(s); two at least are needed"
        else:
            candidate.agreements = _stability(family, params, rows, settings.seeds, seed)
            candidate.stability = float(np.mean(candidate.agreements))
        candidate.seconds = time.perf_counter() - started
        report(
            f"{candidate.name}: {candidate.clusters} clusters, silhouette "
            f"{candidate.silhouette:.3f}, stability {candidate.stability:.3f}"
        )
        candidates.append(candidate)
    return candidates


def choose(candidates: list[Candidate], min_stability: float) -> Candidate | None:
    """Return the best silhouette among the stable candidates; else the most stable one."""
    scored = [candidate for candidate in candidates if candidate.ok]
    if not scored:
        return None
    stable = [candidate for candidate in scored if candidate.stability >= min_stability]
    if stable:
        return max(stable, key=lambda candidate: candidate.silhouette)
    return max(scored, key=lambda candidate: candidate.stability)
