from __future__ import annotations

import numpy as np

from shipyard import datasets
from shipyard.tasks.text.drift import TOKEN_PATTERN, TextDriftReference, text_signals


def test_signals_by_hand():
    signals = text_signals(["Free cash now", "", "zzz qq free"], {"free", "cash"})
    assert signals["length"].tolist() == [13, 0, 11]
    assert signals["words"].tolist() == [3, 0, 3]
    np.testing.assert_allclose(signals["oov_rate"], [1 / 3, 0.0, 2 / 3])
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    cosine = text_signals(["a", "b", "c"], set(), embeddings, [1.0, 0.0])["centroid_cosine"]
    np.testing.assert_allclose(cosine, [1.0, 0.0, np.sqrt(0.5)])


def test_real_messages_do_not_drift_but_foreign_long_texts_do():
    messages = datasets.load("sms_spam").train["text"].tolist()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(messages))
    # The model's vocabulary comes from training texts; the reference from held-out ones.
    vocabulary = {
        word for i in order[:2000] for word in TOKEN_PATTERN.findall(messages[i].lower())
    }
    reference_texts = [messages[i] for i in order[2000:3000]]
    reference = TextDriftReference.from_texts(reference_texts, vocabulary)
    same = reference.compare([messages[i] for i in order[3000:4000]])
    assert [row.drifted for row in same] == [False, False, False]
    foreign = [
        "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
        f"incididunt ut labore et dolore magna aliqua numero {i}"
        for i in range(500)
    ]
    shifted = {row.column: row for row in reference.compare(foreign)}
    assert shifted["oov_rate"].drifted is True
    assert shifted["length"].drifted is True
    restored = TextDriftReference.from_json(reference.to_json())
    assert [row.psi for row in restored.compare(foreign)] == [
        row.psi for row in reference.compare(foreign)
    ]


def test_tfidf_centroid_cosine_moves_when_the_topic_does():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from shipyard.runtime.text import TextFeaturizer
    from shipyard.tasks.text.export import _vectorizer_spec

    messages = datasets.load("sms_spam").train["text"].tolist()
    rng = np.random.default_rng(1)
    order = rng.permutation(len(messages))
    training = [messages[i] for i in order[:2000]]
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float64).fit(training)
    featurizer = TextFeaturizer([_vectorizer_spec(vectorizer)])
    reference = TextDriftReference.from_texts(
        [messages[i] for i in order[2000:3000]],
        vectorizer.vocabulary_,
        featurizer=featurizer,
        centroid_texts=training,
    )
    assert len(reference.terms or {}) <= 1000
    same = reference.compare([messages[i] for i in order[3000:4000]], featurizer=featurizer)
    assert [row.drifted for row in same] == [False] * 4
    # Known words about something else: the vocabulary still covers them, the topic moved.
    topic = [f"call me when you get home i am at the office {i % 7}" for i in range(500)]
    shifted = {row.column: row for row in reference.compare(topic, featurizer=featurizer)}
    assert shifted["tfidf_centroid_cosine"].drifted is True
    restored = TextDriftReference.from_json(reference.to_json())
    assert restored.terms == reference.terms
