"""Exports of the unsupervised models: parity with scikit-learn, and a check that can fail.

Each family is fitted on UCI Adult's numeric columns (bundled), exported to plain arrays, and
scored by shipyard's runtime; the parity check must pass, and must fail once the export is
perturbed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from shipyard import datasets
from shipyard.data.unlabelled import numeric_contract, numeric_values
from shipyard.errors import ConfigError, ExportError
from shipyard.runtime.numeric import NumericView, fit_numeric_view
from shipyard.tasks.anomaly import export as anomaly_export
from shipyard.tasks.clustering import export as cluster_export
from shipyard.tasks.clustering.candidates import Candidate, choose

COLUMNS = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.fixture(scope="module")
def adult() -> dict:
    frame = datasets.load("adult").train.sample(n=1600, random_state=1).reset_index(drop=True)
    contract, _ = numeric_contract(frame, None, drop=["income"])
    values = numeric_values(frame, COLUMNS)
    view = fit_numeric_view(values[:1000], COLUMNS)
    rows = view.transform(values)
    return {"contract": contract, "view": view, "train": rows[:1000], "held_out": rows[1000:]}


def test_the_numeric_view_standardises_and_rotates_like_scikit_learn(adult: dict):
    values = numeric_values(datasets.load("adult").train.head(500), COLUMNS)
    view = fit_numeric_view(values, COLUMNS, pca_components=3, seed=0)
    standardised = (values - values.mean(axis=0)) / values.std(axis=0)
    expected = PCA(n_components=3, svd_solver="full").fit(standardised).transform(standardised)
    assert np.max(np.abs(view.transform(values) - expected)) < 1e-9
    assert NumericView.from_json(view.to_json()) == view
    missing = values[:1].copy()
    missing[0, 0] = np.nan  # a missing value is the training mean: 0 once standardised
    assert view.standardise(missing)[0, 0] == 0.0


@pytest.mark.parametrize(
    "model",
    [
        IsolationForest(n_estimators=40, random_state=0),
        IsolationForest(n_estimators=40, max_features=0.5, contamination=0.05, random_state=0),
        LocalOutlierFactor(n_neighbors=15, novelty=True),
        LocalOutlierFactor(n_neighbors=15, novelty=True, contamination=0.1),
    ],
    ids=["forest-auto", "forest-subsampled-5%", "lof-auto", "lof-10%"],
)
def test_anomaly_exports_score_like_scikit_learn(adult: dict, model):
    family = "lof" if isinstance(model, LocalOutlierFactor) else "isolation_forest"
    model.fit(adult["train"])
    document = anomaly_export.export_document(family, model, len(COLUMNS))
    predictor = anomaly_export.AnomalyPredictor(adult["contract"], adult["view"], document)
    gaps = anomaly_export.parity_gaps(predictor, model, adult["held_out"])
    assert gaps == {"score": pytest.approx(0.0, abs=1e-9), "decision": 0.0}
    batch = predictor.outputs(adult["held_out"])
    alone = np.vstack([predictor.outputs(adult["held_out"][i : i + 1]) for i in range(100)])
    np.testing.assert_array_equal(alone, batch[:100])  # the same answer alone and in a batch
    flagged = batch[:, 1].mean()
    assert flagged == pytest.approx(np.mean(model.predict(adult["held_out"]) == -1))

    perturbed = copy.deepcopy(document)
    if family == "lof":
        perturbed["density"][int(np.argmax(perturbed["density"]))] *= 1.5
        perturbed["density"] = [value * 1.01 for value in perturbed["density"]]
    else:
        perturbed["trees"][0]["leaf_length"] = [
            v + 1.0 for v in perturbed["trees"][0]["leaf_length"]
        ]
    broken = anomaly_export.AnomalyPredictor(adult["contract"], adult["view"], perturbed)
    with pytest.raises(ExportError, match="disagrees with scikit-learn"):
        anomaly_export.parity_gaps(broken, model, adult["held_out"])


def test_kmeans_export_assigns_like_scikit_learn(adult: dict):
    model = KMeans(n_clusters=4, n_init=2, random_state=0).fit(adult["train"])
    document = cluster_export.export_document("kmeans", model, adult["train"], 100, 0)
    predictor = cluster_export.ClusterPredictor(adult["contract"], adult["view"], document)
    gaps = cluster_export.parity_gaps(predictor, model, adult["held_out"])
    assert gaps["cluster"] == 0.0
    assert gaps["distance"] < 1e-9

    perturbed = copy.deepcopy(document)
    perturbed["centroids"][0] = [value + 0.5 for value in perturbed["centroids"][0]]
    broken = cluster_export.ClusterPredictor(adult["contract"], adult["view"], perturbed)
    with pytest.raises(ExportError, match="disagrees with scikit-learn"):
        cluster_export.parity_gaps(broken, model, adult["held_out"])


def test_hdbscan_export_assigns_new_rows_to_the_nearest_exemplar(adult: dict):
    model = HDBSCAN(min_cluster_size=15, copy=True).fit(adult["train"])
    document = cluster_export.export_document("hdbscan", model, adult["train"], 200, 0)
    assert len(document["exemplars"]) <= 200 + 2 * len(document["labels"])
    predictor = cluster_export.ClusterPredictor(adult["contract"], adult["view"], document)
    gaps = cluster_export.parity_gaps(predictor, model, adult["held_out"])
    assert max(gaps.values()) < 1e-9
    far = np.full((1, len(COLUMNS)), 50.0)  # fifty standard deviations from every exemplar
    assert predictor.outputs(far)[0, 0] == -1

    perturbed = copy.deepcopy(document)
    perturbed["exemplar_labels"] = perturbed["exemplar_labels"][::-1]
    broken = cluster_export.ClusterPredictor(adult["contract"], adult["view"], perturbed)
    with pytest.raises(ExportError):
        cluster_export.parity_gaps(broken, model, adult["held_out"])


def test_the_chosen_clustering_is_the_best_stable_one():
    def candidate(k: int, silhouette: float, stability: float) -> Candidate:
        return Candidate("kmeans", {"k": k}, silhouette, stability)

    unstable_best = candidate(2, 0.6, 0.4)
    stable = candidate(3, 0.5, 0.9)
    assert choose([unstable_best, stable, candidate(4, 0.3, 0.95)], 0.75) is stable
    # None stable enough: the most stable one, not the best silhouette.
    assert choose([unstable_best, candidate(5, 0.2, 0.6)], 0.75).params == {"k": 5}
    assert choose([Candidate("hdbscan", {"min_cluster_size": 5})], 0.75) is None


def test_known_labels_may_cover_some_rows_and_give_precision_at_k():
    import pandas as pd

    from shipyard.tasks.anomaly.evaluation import known_anomalies, precision_at_k, test_metrics

    frame = pd.DataFrame({"fraud": [1.0, None, 0.0, 1.0, None, 0.0, 0.0, 0.0]})
    is_anomaly, labelled = known_anomalies(frame, "fraud", None)
    assert labelled.tolist() == [True, False, True, True, False, True, True, True]
    assert is_anomaly[labelled].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    scores = np.array([0.9, 0.99, 0.1, 0.8, 0.95, 0.7, 0.2, 0.3])
    # Labelled rows by score: 0.9 (anomaly), 0.8 (anomaly), 0.7, 0.3, 0.2, 0.1.
    assert precision_at_k(scores[labelled], is_anomaly[labelled], 2) == 1.0
    assert precision_at_k(scores[labelled], is_anomaly[labelled], 4) == 0.5
    metrics = test_metrics(scores, scores > 0.85, (is_anomaly, labelled), 2, 100, 0.95, 0)
    assert metrics["precision_at_k"].value == 1.0
    assert metrics["anomaly_rate"].value == 3 / 8
    with pytest.raises(ConfigError, match="positive_class 'yes' is not a value"):
        known_anomalies(frame, "fraud", "yes")
    words = pd.DataFrame({"label": ["ok", "odd", None]})
    with pytest.raises(ConfigError, match="Set positive_class to the label value"):
        known_anomalies(words, "label", None)
