"""The numeric view unsupervised models learn on: standardised columns, optionally rotated by PCA.

Clustering and anomaly detection measure distances between rows, so every numeric column is
put on one scale first: a missing value becomes the column's training mean, then each column
is centred and divided by its standard deviation; with ``pca_components`` the standardised
rows are projected on the leading principal components as well. The view is stored in the
bundle as plain numbers (:meth:`NumericView.to_json`) and applied with numpy alone, so serving
needs neither scikit-learn nor pickle; :func:`fit_numeric_view` fits it at training time.

Examples
--------
>>> import numpy as np
>>> view = fit_numeric_view(np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]]), ["a", "b"])
>>> view.transform(np.array([[3.0, 20.0]])).round(6).tolist()
[[0.0, 0.0]]
>>> NumericView.from_json(view.to_json()) == view
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError

__all__ = ["NumericPredictor", "NumericView", "fit_numeric_view", "records_matrix"]

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class NumericView:
    """Standardisation (and an optional PCA rotation) of named numeric columns.

    Parameters
    ----------
    columns
        The input columns, in order.
    mean, scale
        Per column: the training mean (also the fill for a missing value) and the standard
        deviation (1 where a column is constant).
    components, pca_mean
        The principal axes (``components x columns``) and the mean they were fitted around,
        or ``None`` without PCA.
    explained
        The share of variance each component explains (empty without PCA).
    """

    columns: tuple[str, ...]
    mean: Matrix
    scale: Matrix
    components: Matrix | None = None
    pca_mean: Matrix | None = None
    explained: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        """The number of values per row the view gives."""
        return len(self.columns) if self.components is None else int(self.components.shape[0])

    def standardise(self, values: Matrix) -> Matrix:
        """Fill missing values with the training mean, centre and scale each column."""
        filled = np.where(np.isnan(values), self.mean, values)
        scaled: Matrix = (filled - self.mean) / self.scale
        return scaled

    def transform(self, values: Matrix) -> Matrix:
        """Map raw rows (``rows x columns``, NaN for missing) to the view."""
        scaled = self.standardise(np.asarray(values, dtype=np.float64))
        if self.components is None or self.pca_mean is None:
            return scaled
        # Products summed row by row rather than a BLAS matrix product, whose rounding depends
        # on how many rows are multiplied: a record gets the same answer alone and in a batch.
        centred = scaled - self.pca_mean
        rotated: Matrix = (centred[:, None, :] * self.components[None, :, :]).sum(axis=2)
        return rotated

    def to_json(self) -> dict[str, Any]:
        """Return the view as plain numbers, for the bundle."""
        document: dict[str, Any] = {
            "columns": list(self.columns),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }
        if self.components is not None and self.pca_mean is not None:
            document["pca"] = {
                "components": self.components.tolist(),
                "mean": self.pca_mean.tolist(),
                "explained": list(self.explained),
            }
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> NumericView:
        """Rebuild a view from :meth:`to_json`."""
        pca = document.get("pca")
        return cls(
            tuple(document["columns"]),
            np.asarray(document["mean"], dtype=np.float64),
            np.asarray(document["scale"], dtype=np.float64),
            None if pca is None else np.asarray(pca["components"], dtype=np.float64),
            None if pca is None else np.asarray(pca["mean"], dtype=np.float64),
            tuple(pca["explained"]) if pca else (),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumericView) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.columns)


def fit_numeric_view(
    values: Matrix, columns: Sequence[str], pca_components: int | None = None, seed: int = 0
) -> NumericView:
    """Fit the view on training rows (``rows x columns``, NaN for missing).

    Raises
    ------
    DataError
        When a column has no value at all, or PCA asks for more components than columns.
    """
    values = np.asarray(values, dtype=np.float64)
    seen = [bool(found) for found in np.asarray(~np.isnan(values)).any(axis=0).reshape(-1)]
    empty = [name for name, found in zip(columns, seen, strict=True) if not found]
    if empty:
        raise DataError(
            f"Column(s) {', '.join(empty)} have no value in the training rows; list them in "
            "data.drop."
        )
    mean = np.nanmean(values, axis=0)
    scale = np.nanstd(values, axis=0)
    scale[scale == 0] = 1.0
    view = NumericView(tuple(columns), mean, scale)
    if pca_components is None:
        return view
    if pca_components > len(columns):
        raise DataError(
            f"pca_components is {pca_components}, but the data has {len(columns)} numeric "
            f"column(s); set it to at most {len(columns)}."
        )
    from sklearn.decomposition import PCA

    pca = PCA(n_components=pca_components, svd_solver="full", random_state=seed)
    pca.fit(view.standardise(values))
    return NumericView(
        view.columns,
        mean,
        scale,
        np.asarray(pca.components_, dtype=np.float64),
        np.asarray(pca.mean_, dtype=np.float64),
        tuple(float(share) for share in pca.explained_variance_ratio_),
    )


def records_matrix(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Matrix:
    """Return the named values of validated records as a float matrix (NaN where missing)."""
    return np.array(
        [
            [np.nan if record.get(name) is None else float(record[name]) for name in columns]
            for record in records
        ],
        dtype=np.float64,
    ).reshape(len(records), len(columns))


class NumericPredictor:
    """Validate records with the contract, map them to the numeric view, answer from it.

    Subclasses set ``task`` and implement :meth:`outputs` (one row of numbers per input row)
    and :meth:`format_row` (the served answer of one output row). They have no classes: the
    served label of an answer is its first output (a cluster id, an anomaly score).
    """

    task = "numeric"

    def __init__(self, contract: Any, view: NumericView, unknown_fields: str = "reject") -> None:
        from shipyard.runtime.validate import RecordValidator

        self.contract = contract
        self.view = view
        self.classes: list[Any] = []
        self.validator = RecordValidator(contract, unknown_fields)

    def outputs(self, rows: Matrix) -> Matrix:
        """Return the outputs of rows already in the view (``rows x view.width``)."""
        raise NotImplementedError

    def format_row(self, row: Sequence[float]) -> dict[str, Any]:
        """Return the served answer of one output row."""
        raise NotImplementedError

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> Matrix:
        """Validate records; return their outputs, one row per record."""
        self.validator.check_records(list(records))
        return self.outputs(self.view.transform(records_matrix(records, self.view.columns)))

    def score_frame(self, frame: Any) -> Matrix:
        """Return the outputs of a frame holding the view's columns."""
        values = frame[list(self.view.columns)].astype("float64").to_numpy(dtype=np.float64)
        return self.outputs(self.view.transform(values))

    def clean_frame(self, frame: Any) -> Any:
        """Return ``frame``: these models have no fitted cleaning."""
        return frame

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and answer records."""
        return [self.format_row(row) for row in self.score_records(records).tolist()]
