"""Retraining steps of the image task: labelled requests join the images as a table.

The champion's images (whatever their source) and the labelled requests are written as one
Parquet table of base64 PNGs and labels, which the image sources read like any table; the gate
scores champion and challenger on the held-out labelled requests, as for records.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.tasks.base import RetrainSteps
from shipyard.tasks.labelled_rows import gate_records

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig

__all__ = ["IMAGE_STEPS", "extend_images"]


def extend_images(
    config: PipelineConfig, learn: list[dict[str, Any]], path: Path
) -> tuple[int, int]:
    """Write the source's images plus each labelled request's image to ``path`` (Parquet)."""
    import pandas as pd

    from shipyard.config import ImageConfig
    from shipyard.tasks.image.sources import encode_png, read_images

    settings = config.image or ImageConfig()
    target, column = config.data.target_column, settings.column
    images, _ = read_images(config.data.source, target, column)
    rows = [
        {column: base64.b64encode(encode_png(pixels)).decode(), target: label}
        for pixels, label in zip(images.images, images.labels, strict=True)
    ]
    rows.extend({column: row["inputs"][column], target: row["label"]} for row in learn)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return len(rows), len(learn)


IMAGE_STEPS = RetrainSteps(extend_images, gate_records)
