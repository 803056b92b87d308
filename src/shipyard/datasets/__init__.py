"""Real public datasets shipped with shipyard, for demos, docs and tests.

>>> from shipyard import datasets
>>> adult = datasets.load("adult")
>>> adult.train.shape, adult.test.shape
((32561, 15), (16281, 15))
>>> sorted(adult.train[adult.target].unique())
['<=50K', '>50K']
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "available", "load"]


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset with its official split, license and citation."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    target: str
    sensitive: tuple[str, ...] = ()
    license: str = ""
    citation: str = ""
    description: str = ""
    splits: tuple[str, ...] = field(default=("train", "test"))
    items: pd.DataFrame | None = None

    def split(self, name: str) -> pd.DataFrame:
        """Return the ``train`` or ``test`` frame (or ``items``, where listed) by name."""
        if name not in self.splits:
            raise DataError(
                f"Dataset '{self.name}' has no split '{name}'; "
                f"choose one of {', '.join(self.splits)}."
            )
        if name == "items" and self.items is not None:
            return self.items
        return self.train if name == "train" else self.test


ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


def _read_adult(filename: str, skiprows: int) -> pd.DataFrame:
    import pandas as pd

    with (
        resources.files(__name__).joinpath("adult", filename).open("rb") as raw,
        gzip.open(raw, "rt", encoding="utf-8") as text,
    ):
        frame = pd.read_csv(
            text,
            header=None,
            names=ADULT_COLUMNS,
            skipinitialspace=True,
            na_values="?",
            skiprows=skiprows,
        )
    # The official test file ends each label with a dot ("<=50K."); the train file does not.
    frame["income"] = frame["income"].str.rstrip(".")
    return frame


def _load_adult() -> Dataset:
    return Dataset(
        name="adult",
        train=_read_adult("adult.data.gz", skiprows=0),
        # The first line of adult.test is "|1x3 Cross validator", not data.
        test=_read_adult("adult.test.gz", skiprows=1),
        target="income",
        sensitive=("sex", "race"),
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        citation="Becker, B. & Kohavi, R. (1996). Adult [Dataset]. UCI Machine Learning "
        "Repository. https://doi.org/10.24432/C5XW20",
        description="1994 US census extract: predict whether income exceeds $50K a year.",
    )


def _load_xwines() -> Dataset:
    from shipyard.datasets.xwines import load_xwines

    return load_xwines()


def _load_bike_sharing() -> Dataset:
    from shipyard.datasets.bike_sharing import load_bike_sharing

    return load_bike_sharing()


def _load_bike_sharing_daily() -> Dataset:
    from shipyard.datasets.bike_sharing import CITATION, load_bike_sharing_daily

    daily = load_bike_sharing_daily()
    return Dataset(
        name="bike_sharing_daily",
        train=daily,
        test=daily.iloc[:0],
        target="cnt",
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        citation=CITATION,
        description="Daily bike rentals in Washington D.C., 2011-2012 (731 days), with the "
        "holiday and working-day calendar: a series to forecast.",
        splits=("train",),
    )


def _load_sms_spam() -> Dataset:
    from shipyard.datasets.sms_spam import load_sms_spam

    return load_sms_spam()


_LOADERS = {
    "adult": _load_adult,
    "bike_sharing": _load_bike_sharing,
    "bike_sharing_daily": _load_bike_sharing_daily,
    "sms_spam": _load_sms_spam,
    "xwines": _load_xwines,
}


def available() -> list[str]:
    """Return the names of the bundled datasets."""
    return sorted(_LOADERS)


def load(name: str) -> Dataset:
    """Load a bundled dataset by name.

    Raises
    ------
    DataError
        When no dataset has that name.
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise DataError(
            f"No bundled dataset named '{name}'. Available: {', '.join(available())}."
        ) from None
    return loader()
