"""The data steps of training, in one place: profile, clean, and (after the split) leakage.

:func:`prepare_training_data` profiles the raw frame and fits and applies the cleaner;
:func:`leakage_findings` runs the leakage checks on the split. The results make up the ``data``
section of the model manifest and of the training report (:meth:`DataReport.as_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.data.clean import clean_training_frame
from shipyard.data.leakage import LeakageFinding, check_leakage, raise_on_errors
from shipyard.errors import MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.data.contract import Contract

__all__ = ["DataReport", "leakage_findings", "prepare_training_data"]


@dataclass
class DataReport:
    """What the data steps found and did, for the manifest and the training report."""

    profile: dict[str, Any]
    cleaning_spec: dict[str, Any] | None
    cleaning_actions: list[str] = field(default_factory=list)
    leakage: list[LeakageFinding] = field(default_factory=list)
    contract: dict[str, Any] = field(default_factory=dict)

    def describe_contract(self, contract: Contract) -> None:
        """Record a short description of the inferred contract."""
        self.contract = {
            "file": "contract.yaml",
            "features": len(contract.columns),
            "nullable": [column.name for column in contract.columns if column.nullable],
            "categorical": [column.name for column in contract.columns if column.is_categorical],
            "ignored": list(contract.ignored),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the manifest's ``data`` section."""
        return {
            "profile": self.profile,
            "contract": self.contract,
            "cleaning": {
                "file": "cleaning.json" if self.cleaning_spec is not None else None,
                "actions": list(self.cleaning_actions),
            },
            "leakage": [finding.as_dict() for finding in self.leakage],
        }


def _summary(frame: pd.DataFrame, target: str) -> dict[str, Any]:
    try:
        from shipyard.data.profile import profile_table

        return profile_table(frame, target=target).summary()
    except MissingDependencyError:
        # The full profile needs DuckDB (shipyard[data]); the counts need only pandas.
        missing = frame.isna().mean()
        return {
            "rows": len(frame),
            "columns": frame.shape[1],
            "duplicate_rows": int(frame.duplicated().sum()),
            "missing": {str(k): round(float(v), 4) for k, v in missing.items() if v},
            "warnings": ["install shipyard[data] for semantic types and warnings"],
        }


def prepare_training_data(
    frame: pd.DataFrame, config: PipelineConfig
) -> tuple[pd.DataFrame, DataReport]:
    """Profile the raw training frame, then fit and apply the cleaner; return the clean frame."""
    target = config.data.target_column
    if target not in frame.columns:
        # Contract inference names the problem (with the nearest column name).
        return frame, DataReport(profile={}, cleaning_spec=None)
    report = DataReport(profile=_summary(frame, target), cleaning_spec=None)
    options = config.cleaning
    if not options.enabled:
        return frame, report
    result = clean_training_frame(
        frame,
        target,
        drop_duplicates=options.drop_duplicates,
        keep=(*config.sensitive, *config.data.drop),
        not_features=config.data.drop,
        missing_tokens=options.missing_tokens,
        rare_share=options.rare_share,
        clip_quantile=options.clip_quantile,
        missing_indicators=options.missing_indicators,
        drop_constant=options.drop_constant,
        drop_identifiers=options.drop_identifiers,
    )
    report.cleaning_spec = result.spec
    report.cleaning_actions = result.actions
    return result.frame, report


def leakage_findings(
    train: pd.DataFrame,
    test: pd.DataFrame,
    contract: Contract,
    config: PipelineConfig,
    task: str,
    report: DataReport,
) -> None:
    """Run the leakage checks; record the findings, then raise if any is an error."""
    options = config.leakage
    if not options.enabled:
        return
    report.leakage = check_leakage(
        train,
        contract.target_name,
        contract.feature_names,
        task=task,
        test=test,
        threshold=options.threshold,
        errors=options.errors,
        prediction_time_column=options.prediction_time_column,
        seed=config.seed,
    )
    raise_on_errors(report.leakage)
