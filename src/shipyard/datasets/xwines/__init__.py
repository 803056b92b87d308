"""X-Wines Slim: 150,000 real wine ratings by 10,561 users of 1,007 wines (CC0 1.0).

The zip is the authors' file, byte for byte. Ratings are 1-5 in half steps, dated 2012-2021.
Cite de Azambuja, R.X., Morais, A.J. & Filipe, V. (2023). X-Wines: A Wine Dataset for
Recommender Systems and Machine Learning. Big Data and Cognitive Computing 7(1), 20.
https://doi.org/10.3390/bdcc7010020
"""

from __future__ import annotations

import zipfile
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.datasets import Dataset

__all__ = ["ARCHIVE", "load_xwines"]

ARCHIVE = "XWines_Slim_1K_wines_150K_ratings.zip"
RATINGS = "XWines_Slim_150K_ratings.csv"
WINES = "XWines_Slim_1K_wines.csv"
CITATION = (
    "de Azambuja, R.X., Morais, A.J. & Filipe, V. (2023). X-Wines: A Wine Dataset for "
    "Recommender Systems and Machine Learning. Big Data and Cognitive Computing 7(1), 20. "
    "https://doi.org/10.3390/bdcc7010020"
)


def _read_member(member: str) -> pd.DataFrame:
    import pandas as pd

    with (
        resources.files(__name__).joinpath(ARCHIVE).open("rb") as raw,
        zipfile.ZipFile(raw) as archive,
        archive.open(member) as handle,
    ):
        return pd.read_csv(handle)


def load_xwines() -> Dataset:
    """Load the ratings (``train``, sorted by ``Date``) and the wine list (``items``).

    There is no official split: split by ``Date`` (the recommendation task does so).
    """
    import pandas as pd

    from shipyard.datasets import Dataset

    ratings = _read_member(RATINGS)
    ratings["Date"] = pd.to_datetime(ratings["Date"])
    # The file is not in time order; a stable sort keeps same-second ratings in file order.
    ratings = ratings.sort_values(["Date", "RatingID"], kind="mergesort").reset_index(drop=True)
    wines = _read_member(WINES)
    return Dataset(
        name="xwines",
        train=ratings,
        test=ratings.iloc[:0],
        target="Rating",
        license="CC0 1.0 Universal (see LICENSE next to the zip)",
        citation=CITATION,
        description="Wine ratings (1-5) by users of a wine social network, with the wine list.",
        splits=("train", "items"),
        items=wines,
    )
