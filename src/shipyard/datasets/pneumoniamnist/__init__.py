"""PneumoniaMNIST (MedMNIST v2): 28 x 28 chest X-rays, normal or pneumonia (CC BY 4.0).

A balanced subset (each split 50/50: train 2,428, validation 270, test 468 images), not
MedMNIST's official 5,856-image split. Cite Yang, J. et al. (2023), MedMNIST v2, Scientific
Data 10, 41, and Kermany, D.S. et al. (2018), Cell 172(5), 1122-1131.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

__all__ = ["CITATION", "LICENSE", "PneumoniaMNIST", "load_pneumoniamnist"]

LICENSE = "CC BY 4.0 (MedMNIST v2)"
CITATION = (
    "Yang, J., Shi, R., Wei, D., Liu, Z., Zhao, L., Ke, B., Pfister, H. & Ni, B. (2023). "
    "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image "
    "classification. Scientific Data, 10, 41. Kermany, D.S., Goldbaum, M., Cai, W. et al. "
    "(2018). Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep "
    "Learning. Cell, 172(5), 1122-1131."
)
FILE = "pneumoniamnist.npz"


@dataclass(frozen=True)
class PneumoniaMNIST:
    """The three splits: ``uint8`` images (n x 28 x 28) and labels (1 = pneumonia)."""

    train_images: npt.NDArray[np.uint8]
    train_labels: npt.NDArray[np.int64]
    val_images: npt.NDArray[np.uint8]
    val_labels: npt.NDArray[np.int64]
    test_images: npt.NDArray[np.uint8]
    test_labels: npt.NDArray[np.int64]


def path() -> str:
    """Return the bundled ``.npz`` file's path (a training source as it is)."""
    return str(resources.files(__name__).joinpath(FILE))


def load_pneumoniamnist() -> PneumoniaMNIST:
    """Load the bundled subset.

    >>> data = load_pneumoniamnist()
    >>> data.train_images.shape, int(data.test_labels.sum())
    ((2428, 28, 28), 234)
    """
    with np.load(path(), allow_pickle=False) as arrays:
        parts = {
            key: arrays[key].reshape(-1).astype(np.int64) if "labels" in key else arrays[key]
            for key in arrays.files
        }
    return PneumoniaMNIST(**parts)
