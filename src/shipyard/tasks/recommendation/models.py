"""Recommenders: a popularity baseline and matrix factorisation (ALS or BPR, by ``implicit``).

Every recommender follows the component contract: the constructor stores parameters, ``fit``
takes a users x items confidence matrix, sets trailing-underscore state and returns ``self``.
Each exposes ``item_factors_`` and ``user_factors_`` (or ``None``) so that a user's scores are
one dot product, which the runtime recomputes from plain arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import TrainingError, require

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

__all__ = ["FACTORISATIONS", "MatrixFactorisation", "PopularityRecommender", "make_recommender"]

FloatMatrix = npt.NDArray[np.float32]
FACTORISATIONS = ("als", "bpr")


class PopularityRecommender:
    """Recommend the items with the most positive interactions, the same list for everyone."""

    name = "popularity"

    def __init__(self) -> None:
        self.popularity_: npt.NDArray[np.float64] | None = None

    def fit(self, matrix: csr_matrix) -> PopularityRecommender:
        """Count each item's users."""
        self.popularity_ = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        return self

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters."""
        return {}

    @property
    def user_factors_(self) -> FloatMatrix | None:
        """Popularity has no user factors."""
        return None

    @property
    def item_factors_(self) -> FloatMatrix | None:
        """Popularity has no item factors."""
        return None

    def score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Scores of every item for each user index (rows)."""
        if self.popularity_ is None:
            raise TrainingError("This PopularityRecommender is not fitted yet; call fit first.")
        return np.broadcast_to(self.popularity_, (len(users), len(self.popularity_)))


class MatrixFactorisation:
    """Implicit-feedback matrix factorisation with the ``implicit`` library.

    Parameters
    ----------
    algorithm
        ``als`` (alternating least squares, Hu, Koren & Volinsky 2008) or ``bpr`` (Bayesian
        personalised ranking, Rendle et al. 2009).
    factors
        Latent dimensions.
    regularization
        L2 penalty.
    iterations
        Passes (ALS) or epochs (BPR).
    alpha
        ALS confidence scaling: confidence = 1 + alpha * count.
    learning_rate
        BPR step size.
    seed
        Random seed; results are reproducible for a fixed seed and one thread.
    threads
        Worker threads; 0 uses every core.
    """

    name = "matrix_factorisation"

    def __init__(
        self,
        algorithm: str = "als",
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        learning_rate: float = 0.05,
        seed: int = 42,
        threads: int = 1,
    ) -> None:
        self.algorithm = algorithm
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.seed = seed
        self.threads = threads

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters."""
        return {
            "algorithm": self.algorithm,
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "alpha": self.alpha,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "threads": self.threads,
        }

    def fit(self, matrix: csr_matrix) -> MatrixFactorisation:
        """Factorise the users x items confidence matrix.

        Raises
        ------
        TrainingError
            When ``algorithm`` is unknown.
        """
        require("implicit", "recommend")
        from threadpoolctl import threadpool_limits

        if self.algorithm not in FACTORISATIONS:
            raise TrainingError(
                f"The 'algorithm' parameter of MatrixFactorisation must be one of "
                f"{', '.join(FACTORISATIONS)}. Got {self.algorithm!r} instead."
            )
        # implicit warns (and slows down) when BLAS runs its own threads inside its loops,
        # so BLAS is held to one thread while the model is built and fitted.
        with threadpool_limits(1, "blas"):
            model = self._model()
            model.fit(matrix.astype(np.float32), show_progress=False)
        self.user_factors_: FloatMatrix = np.ascontiguousarray(model.user_factors, np.float32)
        self.item_factors_: FloatMatrix = np.ascontiguousarray(model.item_factors, np.float32)
        return self

    def _model(self) -> Any:
        if self.algorithm == "als":
            from implicit.cpu.als import AlternatingLeastSquares

            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.threads,
            )
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=self.threads,
        )

    def score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Scores of every item for each user index (rows): one dot product."""
        if not hasattr(self, "item_factors_"):
            raise TrainingError("This MatrixFactorisation is not fitted yet; call fit first.")
        product = self.user_factors_[users].astype(np.float64) @ self.item_factors_.T.astype(
            np.float64
        )
        return np.asarray(product, dtype=np.float64)


def make_recommender(family: str, **params: Any) -> PopularityRecommender | MatrixFactorisation:
    """Build an unfitted recommender by family name (``popularity``, ``als`` or ``bpr``)."""
    if family == "popularity":
        return PopularityRecommender()
    return MatrixFactorisation(algorithm=family, **params)
