"""Categories training never saw: the ``data.unknown_categories`` policy, one rule everywhere.

A categorical column's contract lists the categories seen in training. A value outside that
list (after the fitted cleaning, which already maps categories *rare* in training to the rare
bucket ``__rare__``) is *unknown*. The policy says what scoring does with it:

``error``
    The row breaks the contract: a request gets a 4xx naming the field, ``shipyard predict``
    quarantines the row, ``train --test-data`` and ``shipyard evaluate`` stop.
``as_missing``
    The value is scored as if it were missing.
``as_rare``
    The value is scored as the column's rare bucket when the fitted cleaning made one for that
    column (the model learned what rare values do), else as missing.

"As missing" means ``None`` in a column that had missing values in training. In a column that
had none (not ``nullable``), ``None`` would break the contract on every later check, and the
preprocessing encodes an unknown value exactly as a missing one there (one-hot: the
infrequent output or none, since no ``(missing)`` level was fitted; ordinal: NaN), so the
value is left as it is, and counted.

The server, ``shipyard predict``, ``shipyard validate --model``, ``shipyard evaluate`` and the
test file of ``shipyard train`` all build one :class:`UnknownCategories` from the contract, the
cleaning spec and the policy saved in the model's manifest, so a row is treated alike
everywhere. Bundles written before the policy existed refused such rows: they load as
``error``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract

__all__ = ["LEGACY_POLICY", "POLICIES", "UnknownCategories"]

POLICIES = ("error", "as_missing", "as_rare")
LEGACY_POLICY = "error"
"""The policy of a bundle whose manifest names none (it refused unknown categories)."""
RARE_BUCKET = "__rare__"
KEEP = object()
"""An unknown category left as it is, because it already scores as a missing value would."""


class UnknownCategories:
    """Replace unknown categories as a policy says, and count them per column.

    Parameters
    ----------
    contract
        The model's data contract (its categorical columns and their categories).
    policy
        ``error``, ``as_missing`` or ``as_rare``.
    cleaning
        The model's fitted cleaning spec (where the rare buckets are), or None.
    """

    def __init__(
        self,
        contract: Contract,
        policy: str = LEGACY_POLICY,
        cleaning: Mapping[str, Any] | None = None,
    ) -> None:
        if policy not in POLICIES:
            from shipyard.errors import DataError

            raise DataError(
                f"Unknown categories policy '{policy}'; use one of {', '.join(POLICIES)}."
            )
        self.policy = policy
        rules = (cleaning or {}).get("columns", {})
        self.known: dict[str, frozenset[str]] = {}
        # Per column: the value an unknown category becomes, or KEEP (see the module docstring).
        self.replacement: dict[str, object] = {}
        for column in contract.columns:
            if column.categories is None:
                continue
            self.known[column.name] = frozenset(column.categories)
            bucket = rules.get(column.name, {}).get("other", RARE_BUCKET)
            if policy == "as_rare" and bucket in column.categories:
                self.replacement[column.name] = bucket
            else:
                self.replacement[column.name] = None if column.nullable else KEEP

    @property
    def tolerant(self) -> bool:
        """Whether unknown categories are scored (not refused)."""
        return self.policy != "error"

    def settle_records(self, records: Sequence[Any]) -> tuple[list[Any], Counter[str]]:
        """Return the records with unknown categories replaced, and the count per column.

        Records are copied only when something is replaced; anything that is not a mapping,
        and values that are not text (the contract's type rule refuses those), pass as they are.
        """
        counts: Counter[str] = Counter()
        settled = []
        for record in records:
            if isinstance(record, Mapping):
                changed: dict[str, Any] | None = None
                for name, known in self.known.items():
                    value = record.get(name)
                    if isinstance(value, str) and value not in known:
                        counts[name] += 1
                        if self.replacement[name] is not KEEP:
                            changed = changed if changed is not None else dict(record)
                            changed[name] = self.replacement[name]
                record = changed if changed is not None else record
            settled.append(record)
        return settled, counts

    def settle_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, Counter[str]]:
        """Return the frame with unknown categories replaced, and the count per column.

        Values are compared as text, as :meth:`Contract.validate_frame
        <shipyard.data.contract.Contract.validate_frame>` compares them. The frame is copied
        only when something is replaced.
        """
        counts: Counter[str] = Counter()
        result = frame
        for name, known in self.known.items():
            if name not in frame.columns:
                continue
            series = frame[name]
            unknown = series.notna() & ~series.astype(str).isin(known)
            hits = int(unknown.sum())
            counts[name] += hits
            if not hits or self.replacement[name] is KEEP:
                continue
            if result is frame:
                result = frame.copy()
            column = series.astype(object)
            column[unknown] = self.replacement[name]
            # A pandas string column stays one, so the batch path keeps its fast lookups.
            result[name] = column if series.dtype == object else column.astype(series.dtype)
        return result, +counts  # no zero counts

    def accepted(self, contract: Contract) -> Contract:
        """Return the contract as scoring enforces it (what the OpenAPI document says).

        Under a policy that scores unknown categories, a categorical column accepts any text.
        """
        if not self.tolerant:
            return contract
        columns = tuple(
            column.model_copy(update={"categories": None}) if column.name in self.known else column
            for column in contract.columns
        )
        return contract.model_copy(update={"columns": columns})

    def describe(self, counts: Mapping[str, int]) -> str:
        """Say in a line what happened to the unknown categories counted."""
        shown = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        how = {
            "as_rare": "scored as the rare bucket (as missing where a column has none)",
            "as_missing": "scored as missing",
            "error": "refused",
        }[self.policy]
        return (
            f"{sum(counts.values())} value(s) of categories unseen in training ({shown}) "
            f"{how} (data.unknown_categories: {self.policy})"
        )
