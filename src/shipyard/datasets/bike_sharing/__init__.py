"""The UCI Bike Sharing hourly data: Capital Bikeshare rentals in 2011 and 2012 (CC BY 4.0).

``hour.csv.gz`` is the original ``hour.csv`` (17,379 hours) gzip-compressed, and ``Readme.txt``
the original description. Cite Fanaee-T, H. & Gama, J. (2013). Event labeling combining ensemble
detectors and background knowledge. Progress in Artificial Intelligence, pp. 1-15.
"""

from __future__ import annotations

import gzip
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.datasets import Dataset

__all__ = ["CITATION", "load_bike_sharing", "load_bike_sharing_daily"]

CITATION = (
    "Fanaee-T, H. & Gama, J. (2013). Event labeling combining ensemble detectors and background "
    "knowledge. Progress in Artificial Intelligence, pp. 1-15. Springer Berlin Heidelberg. "
    "https://doi.org/10.1007/s13748-013-0040-3"
)


def load_bike_sharing() -> Dataset:
    """Load the hourly counts: ``train`` is 2011 (8,645 hours), ``test`` is 2012 (8,734).

    The split is by time, as a model meets the data: trained on one year, serving the next.
    ``cnt`` (rentals in the hour) is the target; ``casual`` and ``registered`` add up to it, so
    they leak the target and must not be features.
    """
    import pandas as pd

    from shipyard.datasets import Dataset

    with (
        resources.files(__name__).joinpath("hour.csv.gz").open("rb") as raw,
        gzip.open(raw, "rt", encoding="utf-8") as text,
    ):
        frame = pd.read_csv(text)
    return Dataset(
        name="bike_sharing",
        train=frame[frame["yr"] == 0].reset_index(drop=True),
        test=frame[frame["yr"] == 1].reset_index(drop=True),
        target="cnt",
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        citation=CITATION,
        description="Hourly bike rentals in Washington D.C. with weather and calendar "
        "(2011 train, 2012 test).",
    )


def load_bike_sharing_daily() -> pd.DataFrame:
    """Daily rentals (731 days, 2011-2012): the hourly counts summed per day.

    The same numbers as the UCI ``day.csv`` (its ``cnt`` is the sum of the day's hours). Columns:
    ``dteday`` (the date), ``cnt`` (rentals), and the calendar known in advance: ``holiday``
    and ``workingday`` (0 or 1).
    """
    hourly = load_bike_sharing()
    import pandas as pd

    hours = pd.concat([hourly.train, hourly.test], ignore_index=True)
    daily = hours.groupby("dteday", sort=True).agg(
        cnt=("cnt", "sum"), holiday=("holiday", "max"), workingday=("workingday", "max")
    )
    return daily.reset_index()
