from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from shipyard.config import TextConfig
from shipyard.data.contract import infer_contract
from shipyard.runtime.text import TextPredictor, char_wb_ngrams, word_ngrams
from shipyard.tasks.text.candidates import text_pipeline
from shipyard.tasks.text.export import check_text_parity, export_text_pipeline

texts = st.text(alphabet=st.sampled_from(list("ab cD1é\t\n!  ÉßxY")), min_size=0, max_size=40)


@given(texts)
def test_char_ngrams_match_scikit_learn(text):
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    assert char_wb_ngrams(text.lower(), 2, 5) == analyzer(text)


@given(texts)
def test_word_ngrams_match_scikit_learn(text):
    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 3))
    pattern = vectorizer.build_tokenizer()
    assert word_ngrams(pattern(text.lower()), 1, 3) == vectorizer.build_analyzer()(text)


def _corpus():
    import pandas as pd

    rng = np.random.default_rng(0)
    words = ["free", "win", "cash", "call", "now", "home", "lunch", "later", "love", "ok"]
    rows = []
    for index in range(200):
        spam = index % 3 == 0
        pool = words[:5] if spam else words[5:]
        chosen = rng.choice(pool + words, size=int(rng.integers(3, 9)))
        rows.append({"message": " ".join(chosen).capitalize() + "!", "y": int(spam)})
    return pd.DataFrame(rows)


def test_exported_model_matches_the_pipeline_within_1e_6():
    frame = _corpus()
    settings = TextConfig(min_df=1)
    pipeline = text_pipeline("tfidf_word_char", settings, 10.0, seed=0)
    pipeline.fit(frame["message"].to_numpy(dtype=object), frame["y"].to_numpy())
    contract = infer_contract(frame, "y", text_columns=["message"])
    assert contract.columns[0].type == "text"
    spec = export_text_pipeline(pipeline, ["message"])
    predictor = TextPredictor(contract, spec, "binary", [0, 1])
    parity = check_text_parity(
        pipeline, predictor, list(frame["message"]), frame[["message"]].to_dict("records")
    )
    assert parity["batched"] <= 1e-6
    assert parity["single"] <= 1e-6
    unseen = ["Totally new words here", "", "FREE cash NOW!!!"]
    np.testing.assert_allclose(
        predictor.score_texts(unseen),
        pipeline.predict_proba(np.asarray(unseen, dtype=object)),
        atol=1e-12,
    )
    answer = predictor.predict_records([{"message": "free cash now win"}])[0]
    assert answer["prediction"] == 1
    assert {token["token"] for token in answer["explanation"]} & {"free", "cash", "win", "now"}


def test_multiclass_export_uses_softmax():
    frame = _corpus()
    frame["y"] = np.arange(len(frame)) % 3
    pipeline = text_pipeline("tfidf_word", TextConfig(min_df=1), 1.0, seed=0)
    pipeline.fit(frame["message"].to_numpy(dtype=object), frame["y"].to_numpy())
    contract = infer_contract(frame, "y", text_columns=["message"])
    predictor = TextPredictor(
        contract, export_text_pipeline(pipeline, ["message"]), "multiclass", [0, 1, 2]
    )
    np.testing.assert_allclose(
        predictor.score_texts(list(frame["message"])),
        pipeline.predict_proba(frame["message"].to_numpy(dtype=object)),
        atol=1e-9,
    )
