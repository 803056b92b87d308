"""The clustering sections of the model card and the report, and the 2-D PCA view."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import require
from shipyard.evaluation.report import Document, DocumentSections

__all__ = ["CLUSTERING_SECTIONS", "pca_view", "pca_view_png"]


def clustering_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the candidates (silhouette, stability), the chosen one and the cluster sizes."""
    details = manifest.get("clustering", {})
    document.heading("How the clustering was chosen")
    document.paragraph(
        f"Each candidate was fitted on {details.get('sample_rows')} sampled training rows. "
        "Silhouette: how much closer rows are to their own cluster than to the next (noise "
        "left out; at most 1). Stability: the mean adjusted Rand index between refits on "
        f"{details.get('seeds')} seeded 90% subsamples (1: the same partition each time). "
        f"The chosen candidate has the best silhouette among those with stability at least "
        f"{details.get('min_stability')}; when none is that stable, the most stable one."
    )
    document.table(
        ["candidate", "clusters", "silhouette", "stability", "noise share", "note"],
        [
            [
                row["name"],
                row["clusters"],
                _number(row["silhouette"]),
                _number(row["stability"]),
                _number(row["noise"]),
                "chosen" if row["name"] == details.get("chosen") else row["message"],
            ]
            for row in details.get("candidates", [])
        ],
    )
    document.heading("Clusters of the training rows")
    sizes = details.get("proportions", {})
    document.table(
        ["cluster", "share of rows"], [[name, f"{share:.3f}"] for name, share in sizes.items()]
    )
    view = details.get("view", {})
    if view.get("explained"):
        document.paragraph(
            "Clustered on principal components of the standardised columns; variance "
            "explained: " + ", ".join(f"{share:.3f}" for share in view["explained"]) + "."
        )
    document.paragraph(
        "The plot shows the test rows on the first two principal components of the "
        "standardised columns, coloured by served cluster (grey: noise)."
    )


def clustering_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Return what the card warns about."""
    found = [
        "Clusters describe the training data's numeric columns; they are not classes and "
        "carry no meaning until someone names them.",
    ]
    if manifest.get("clustering", {}).get("family") == "hdbscan":
        found.append(
            "New rows are assigned to the cluster of their nearest exemplar (noise beyond the "
            "cluster's reach), an approximation of HDBSCAN, which has no predict step."
        )
    return found


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


CLUSTERING_SECTIONS = DocumentSections(
    blocks=clustering_blocks, limitations=clustering_limitations
)


def pca_view(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Project standardised rows on their first two principal components (fewer if fewer)."""
    centred = rows - rows.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    projected: npt.NDArray[np.float64] = centred @ axes[:2].T
    return projected


def pca_view_png(rows: npt.NDArray[np.float64], clusters: npt.NDArray[np.float64]) -> bytes:
    """Draw the 2-D view coloured by cluster; return PNG bytes."""
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    points = pca_view(rows)
    if points.shape[1] < 2:
        points = np.column_stack([points[:, 0], np.zeros(len(points))])
    figure, axes = pyplot.subplots(figsize=(6, 5))
    noise = clusters < 0
    if noise.any():
        axes.scatter(points[noise, 0], points[noise, 1], s=6, c="lightgrey", label="noise")
    for cluster in sorted(set(clusters[~noise].astype(int).tolist())):
        chosen = clusters == cluster
        axes.scatter(points[chosen, 0], points[chosen, 1], s=6, label=f"cluster {cluster}")
    axes.set_xlabel("principal component 1")
    axes.set_ylabel("principal component 2")
    axes.legend(markerscale=3, fontsize=8)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    pyplot.close(figure)
    return buffer.getvalue()
