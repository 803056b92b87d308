from __future__ import annotations

import hashlib
from importlib import resources

from shipyard import datasets
from shipyard.data.sources import read_table

# The authors' published SHA-256 of the X-Wines Slim zip: the bundled file is byte for byte.
XWINES_SHA256 = "6ffd494e53eb4098b0e9cf38ffac6322967d6b0b8b5106a833f482bd58db9ebf"


def test_xwines_is_the_authors_file_with_the_documented_shapes() -> None:
    archive = resources.files("shipyard.datasets.xwines").joinpath(
        "XWines_Slim_1K_wines_150K_ratings.zip"
    )
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == XWINES_SHA256
    xwines = datasets.load("xwines")
    assert xwines.train.shape == (150_000, 6)
    assert xwines.train["UserID"].nunique() == 10_561
    assert xwines.train["Date"].is_monotonic_increasing
    assert xwines.items is not None
    assert xwines.items.shape == (1007, 17)
    assert read_table("dataset:xwines:items").shape == (1007, 17)
    assert "10.3390/bdcc7010020" in xwines.citation


def test_sms_spam_parses_every_message() -> None:
    spam = datasets.load("sms_spam")
    assert spam.train.shape == (5574, 2)
    assert spam.train["label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}
    assert "Almeida" in spam.citation
