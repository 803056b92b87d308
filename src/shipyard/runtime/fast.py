"""The single-record fast path: LightGBM's C API called on one row, without numpy per call.

``Booster.predict`` costs about 100 microseconds for one row, mostly Python and numpy set-up;
``LGBM_BoosterPredictForMatSingleRowFast`` with a configuration prepared once costs a few.
:class:`FastLightGBMScorer` wraps a :class:`~shipyard.runtime.models.LightGBMScorer` without
changing it: batches still go through ``Booster.predict``, one-row calls go through the C API.
LightGBM scores every row on its own in both routines, so answers do not depend on batching
(the serving tests assert equality to the last bit).

:func:`accelerate` swaps the scorer of a :class:`~shipyard.runtime.predictor.Predictor` for the
fast one where the model supports it, and leaves other models as they are.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.runtime.models import FloatArray, LightGBMScorer
from shipyard.runtime.preprocess import MISSING_CATEGORY
from shipyard.runtime.validate import FLOAT64_MAX

if TYPE_CHECKING:
    from shipyard.runtime.predictor import Predictor

__all__ = ["FastLightGBMScorer", "RecordEncoder", "SingleRecordPath", "accelerate"]

# Constants from LightGBM's c_api.h.
_PREDICT_NORMAL = 0
_DTYPE_FLOAT64 = 1


class FastLightGBMScorer:
    """Score one row through LightGBM's fast single-row C API; batches as before.

    Parameters
    ----------
    scorer
        The scorer to wrap; its booster is reused, not copied.

    Notes
    -----
    The fast configuration holds per-call buffers inside LightGBM, so one-row calls are
    serialised with a lock (they take microseconds; the server is one event loop per process).
    """

    def __init__(self, scorer: LightGBMScorer) -> None:
        import lightgbm.basic

        self.inner = scorer
        self.task = scorer.task
        self.booster = scorer.booster
        self._library: Any = getattr(lightgbm.basic, "_LIB")  # noqa: B009
        # The one-row call takes microseconds: it keeps the GIL. Through ctypes.CDLL it would
        # release it, and another thread (the prediction log's) could then hold the request
        # for up to the interpreter's switch interval (5 ms) before it got the GIL back.
        holding = ctypes.PyDLL(self._library._name, handle=self._library._handle)
        self._predict_row = holding.LGBM_BoosterPredictForMatSingleRowFast
        self.n_features = int(self.booster.num_feature())
        self.n_outputs = int(self.booster.num_model_per_iteration())
        self._row = (ctypes.c_double * self.n_features)()
        self._result = (ctypes.c_double * max(self.n_outputs, 1))()
        self._length = ctypes.c_int64(0)
        self._lock = threading.Lock()
        self._config = ctypes.c_void_p()
        status = self._library.LGBM_BoosterPredictForMatSingleRowFastInit(
            self.booster._handle,
            ctypes.c_int(_PREDICT_NORMAL),
            ctypes.c_int(0),
            ctypes.c_int(-1),
            ctypes.c_int(_DTYPE_FLOAT64),
            ctypes.c_int32(self.n_features),
            ctypes.c_char_p(b""),
            ctypes.byref(self._config),
        )
        if status != 0:  # pragma: no cover - only on a LightGBM internal failure
            raise RuntimeError(self._library.LGBM_GetLastError().decode())

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._library.LGBM_FastConfigFree(config)
            config.value = None

    def score_row(self, row: list[float]) -> list[float]:
        """Return the outputs of one feature row as a list (probabilities or one value).

        For ``binary`` the list is ``[1 - p, p]``, as in :meth:`score`.
        """
        with self._lock:
            row_buffer: Any = self._row
            row_buffer[:] = row
            status = self._predict_row(
                self._config, self._row, ctypes.byref(self._length), self._result
            )
            if status != 0:  # pragma: no cover - only on a LightGBM internal failure
                raise RuntimeError(self._library.LGBM_GetLastError().decode())
            values = self._result[: self._length.value]
        if self.task == "binary":
            return [1.0 - values[0], values[0]]
        return values

    def score(self, features: FloatArray) -> FloatArray:
        """Score a batch: one row through the C API, several through ``Booster.predict``."""
        if features.shape[0] != 1:
            return self.inner.score(features)
        values = self.score_row(features[0].tolist())
        if self.task == "regression":
            return np.array(values, dtype=np.float64)
        return np.array([values], dtype=np.float64)


def accelerate(predictor: Predictor) -> Predictor:
    """Give ``predictor`` the fast single-row scorer when its model has one; return it."""
    scorer: Any = getattr(predictor, "scorer", None)
    if isinstance(scorer, LightGBMScorer):
        predictor.scorer = FastLightGBMScorer(scorer)
    return predictor


_NUMBER, _STRING, _BOOLEAN = 0, 1, 2
_INFINITIES = (float("inf"), float("-inf"))


class RecordEncoder:
    """Check and encode one well-formed record in a single tight pass.

    This is a shortcut, never a second opinion: :meth:`encode` returns ``None`` as soon as
    anything is unusual (a missing required field, a wrong type, an unknown category or field,
    a value out of range), and the caller then runs the full
    :class:`~shipyard.runtime.validate.RecordValidator` for the detailed error. A row it does
    return equals :meth:`CompiledPreprocessor.transform_record` of the record, bit for bit.

    Parameters
    ----------
    predictor
        The predictor whose contract and preprocessing are compiled.
    """

    def __init__(self, predictor: Predictor) -> None:
        contract = predictor.contract
        validator = predictor.validator
        self._reject = validator.unknown_fields == "reject"
        self._allowed = frozenset(
            {column.name for column in contract.columns}
            | set(contract.ignored)
            | {column.name for column in contract.target_columns}
        )
        self._checks: list[tuple[Any, ...]] = []
        for column in contract.columns:
            code = {"string": _STRING, "boolean": _BOOLEAN}.get(column.type, _NUMBER)
            categories = frozenset(column.categories) if column.categories is not None else None
            self._checks.append(
                (
                    column.name,
                    code,
                    column.type == "integer",
                    categories,
                    column.min,
                    column.max,
                    column.nullable,
                )
            )
        self._width = predictor.preprocessor.n_outputs
        self._plan = predictor.preprocessor._plan

    def encode(self, record: Any) -> list[float] | None:
        """Return the feature row of a valid record, or ``None`` to ask for the full check."""
        if type(record) is not dict:
            return None
        if self._reject and not self._allowed.issuperset(record):
            return None
        get = record.get
        value: Any
        for name, code, integer, categories, low, high, nullable in self._checks:
            value = get(name)
            if value is None:
                if nullable:
                    continue
                return None
            kind = type(value)
            if code == _NUMBER:
                if kind is float:
                    if value != value:  # NaN counts as missing
                        if nullable:
                            continue
                        return None
                    if value in _INFINITIES or (integer and not value.is_integer()):
                        return None
                elif kind is not int or not -FLOAT64_MAX <= value <= FLOAT64_MAX:
                    return None  # past float64, float() would overflow: the full check says so
                if (low is not None and value < low) or (high is not None and value > high):
                    return None
            elif code == _STRING:
                if kind is not str or (categories is not None and value not in categories):
                    return None
            elif kind is not bool and not (kind is int and value in (0, 1)):
                return None
        row = [0.0] * self._width
        nan = float("nan")
        for kind_name, column, offset, plan in self._plan:
            value = get(column)
            missing = value is None or value != value
            if kind_name == "numeric":
                fill, center, scale = plan
                row[offset] = ((fill if missing else float(value)) - center) / scale
            elif kind_name == "onehot":
                positions, other = plan
                key = (
                    MISSING_CATEGORY if missing else (value if type(value) is str else str(value))
                )
                position = positions.get(key, other)
                if position is not None:
                    row[offset + position] = 1.0
            else:
                row[offset] = (
                    nan if missing else plan.get(value if type(value) is str else str(value), nan)
                )
        return row


class SingleRecordPath:
    """Answer one record with as little work as possible: validate, encode, score, format.

    The answer is the one :meth:`Predictor.predict_records` gives for a one-record list, to the
    last bit; it skips building numpy arrays when the model has a one-row routine.

    Parameters
    ----------
    predictor
        The predictor whose validator, preprocessing and scorer are used.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.scorer = getattr(predictor, "scorer", None)
        self._score_row = getattr(self.scorer, "score_row", None)
        self._labels = [str(label) for label in predictor.classes]
        self._regression = predictor.task == "regression"
        # A predictor whose answer is neither a label nor a value (a cluster and its distance,
        # an anomaly score and its decision) formats its outputs itself.
        self._format_row = getattr(predictor, "format_row", None)
        # Other tasks' predictors (text, for one) have no compiled record encoder: they are
        # scored through their own score_records.
        # A predictor that encodes in its ONNX graph is scored through score_records too.
        tabular = hasattr(predictor, "preprocessor") and not getattr(
            predictor, "encodes_in_graph", False
        )
        self._encoder = RecordEncoder(predictor) if tabular else None
        if (
            self._encoder is not None
            and self._score_row is None
            and isinstance(self.scorer, LightGBMScorer)
        ):
            # A LightGBM model not accelerated by its owner still gets the one-row routine.
            self._score_row = FastLightGBMScorer(self.scorer).score_row

    def outputs(self, record: Any) -> list[float]:
        """Validate and score one record; return its raw outputs as a list.

        Raises
        ------
        RecordValidationError
            When the record breaks the contract.
        """
        predictor = self.predictor
        if self._encoder is None:
            return list(np.atleast_1d(predictor.score_records([record])[0]).tolist())
        if predictor.cleaner is not None:  # the bundle's fitted cleaning runs before the contract
            record = predictor.cleaner.clean_records([record])[0]
        row = self._encoder.encode(record)
        if row is None:
            predictor.validator.check_records([record])
            record = predictor.settle_records([record])[0]
            row = predictor.preprocessor.transform_record(record)
        if self._score_row is not None:
            values: list[float] = self._score_row(row)
            return values
        features = np.array([row], dtype=np.float64)
        return list(np.atleast_1d(predictor.scorer.score(features)).reshape(-1).tolist())

    def groups(self, records: list[Any]) -> list[str] | None:
        """Return each record's sensitive group when the label depends on it, else ``None``.

        Raises
        ------
        RecordValidationError
            When a record lacks a sensitive column the decision depends on.
        """
        if getattr(self.predictor, "group_thresholds", None) is None:  # text models have none
            return None
        return self.predictor.groups_of_records(records)

    def class_index(self, outputs: list[float], group: str | None = None) -> int:
        """Return the predicted class of one row of probabilities, as the predictor decides."""
        rule = getattr(self.predictor, "group_thresholds", None)
        if rule is not None:
            if group is None:
                raise ValueError("This model decides per sensitive group: pass the group.")
            return int(outputs[1] >= rule.threshold(group))
        threshold = getattr(self.predictor, "threshold", None)  # text models have none
        if threshold is not None:
            return int(outputs[1] >= threshold)
        return max(range(len(outputs)), key=outputs.__getitem__)

    def answer(self, outputs: list[float], group: str | None = None) -> dict[str, Any]:
        """Format raw outputs like :meth:`Predictor.format_outputs` does."""
        if self._format_row is not None:
            answer: dict[str, Any] = self._format_row(outputs)
            return answer
        if self._regression:
            return {"prediction": float(outputs[0])}
        answer = {
            "prediction": self.predictor.classes[self.class_index(outputs, group)],
            "probabilities": dict(zip(self._labels, outputs, strict=True)),
        }
        rule = getattr(self.predictor, "group_thresholds", None)
        if rule is not None and group is not None:
            answer["threshold"] = {"group": group, "value": rule.threshold(group)}
        return answer

    def predict(self, record: Any) -> dict[str, Any]:
        """Validate, score and format one record."""
        outputs = self.outputs(record)
        groups = self.groups([record])
        return self.answer(outputs, None if groups is None else groups[0])
