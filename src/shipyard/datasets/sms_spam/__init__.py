"""The UCI SMS Spam Collection v.1: 5,574 real SMS messages labelled ham or spam (CC BY 4.0).

``SMSSpamCollection`` and ``readme`` are the original files, byte for byte. Cite Almeida,
T.A., Gómez Hidalgo, J.M. & Yamakami, A. (2011). Contributions to the Study of SMS Spam
Filtering: New Collection and Results. Proceedings of the 2011 ACM Symposium on Document
Engineering (DocEng'11).
"""

from __future__ import annotations

import csv
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.datasets import Dataset

__all__ = ["load_sms_spam"]

CITATION = (
    "Almeida, T.A., Gómez Hidalgo, J.M. & Yamakami, A. (2011). Contributions to the Study of "
    "SMS Spam Filtering: New Collection and Results. Proceedings of the 2011 ACM Symposium on "
    "Document Engineering (DocEng'11)."
)


def load_sms_spam() -> Dataset:
    """Load all 5,574 messages as ``train`` (columns ``label``, ``text``); there is no split."""
    import pandas as pd

    from shipyard.datasets import Dataset

    with resources.files(__name__).joinpath("SMSSpamCollection").open("rb") as raw:
        # Messages contain quote characters; without QUOTE_NONE pandas merges messages.
        frame = pd.read_csv(
            raw,
            sep="\t",
            header=None,
            names=["label", "text"],
            quoting=csv.QUOTE_NONE,
            encoding="utf-8",
        )
    return Dataset(
        name="sms_spam",
        train=frame,
        test=frame.iloc[:0],
        target="label",
        license="CC BY 4.0 (UCI Machine Learning Repository)",
        citation=CITATION,
        description="SMS messages labelled spam or ham (legitimate).",
        splits=("train",),
    )
