"""Sparse linear probes as scikit-learn estimators: :class:`SparseLinearProbe` and :class:`SparseLogisticProbe`.

Hyper-parameters live in ``__init__``; ``fit`` standardises the inputs (training statistics), holds
out a validation share of the *groups* (games) to choose the L1 strength along a warm-started path,
and leaves the learned state in attributes ending in ``_``: ``coef_`` (on the raw inputs),
``intercept_``, ``alpha_`` (the chosen λ, scikit-learn's α), ``n_nonzero_``, ``val_score_``,
``mean_``/``scale_`` (the standardisation), and for the classifier ``threshold_`` (the training
prevalence: predict the positive class above it, which maximises balanced accuracy). ``score`` is
R² for the regressor and balanced accuracy for the classifier. ``y`` may have several columns
(several targets fitted at once over one Gram matrix); ``coef_`` then has one row per target.

These are the same solvers the sweeps use (:mod:`conceptchess.probing.regularisation`), one estimator at a
time. Validation and test splits should be by game: pass ``groups``.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(600, 30)); y = 3 * X[:, 4] - 2 * X[:, 17] + 0.01 * rng.normal(size=600)
>>> probe = SparseLinearProbe(random_state=0).fit(X, y, groups=np.arange(600) // 10)
>>> np.flatnonzero(np.abs(probe.coef_) > 0.05).tolist(), round(probe.score(X, y), 3)
([4, 17], 1.0)
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from conceptchess.errors import ConceptChessError
from conceptchess.probing.regularisation import (
    DEFAULT_PATIENCE,
    DEFAULT_RATIOS,
    Design,
    balanced_accuracies,
    logistic_path,
    r2_scores,
    regression_path,
)
from conceptchess.probing.split import Standardizer, split_by_game


class _SparseProbe(BaseEstimator):
    _kind = "regression"

    def __init__(self, ratios=DEFAULT_RATIOS, patience: int = DEFAULT_PATIENCE, validation: float = 0.2, random_state: int = 0,
                 iters: int = 10):
        self.ratios = ratios
        self.patience = patience
        self.validation = validation
        self.random_state = random_state
        self.iters = iters

    def fit(self, X, y, groups=None, X_val=None, y_val=None):
        """Fit; λ is chosen on ``(X_val, y_val)`` if given, else on a held-out ``validation`` share of ``groups``."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        self._multi = y.ndim == 2
        Y = y.reshape(len(y), -1)
        if len(X) != len(Y):
            raise ConceptChessError(f"X has {len(X)} rows and y {len(Y)}")
        if X_val is None:
            groups = np.arange(len(X)) if groups is None else np.asarray(groups)
            v = float(self.validation)
            s = split_by_game(groups, (1.0 - v, v / 2, v / 2), int(self.random_state))
            tr, va = s.train, np.concatenate([s.val, s.test])
            Xt, Yt, Xv, Yv = X[tr], Y[tr], X[va], Y[va]
        else:
            Xt, Yt = X, Y
            Xv, Yv = np.asarray(X_val, dtype=np.float32), np.asarray(y_val, dtype=np.float32).reshape(len(X_val), -1)
        std = Standardizer.fit(Xt)
        design = Design(std.tensor(Xt), std.tensor(Xv))
        path = regression_path if self._kind == "regression" else logistic_path
        fit = path(design, torch.from_numpy(Yt), None, torch.from_numpy(Yv), None, ratios=tuple(self.ratios),
                   patience=int(self.patience), iters=int(self.iters))
        raw, b = std.to_raw(fit.coef.numpy(), fit.intercept.numpy())
        self.mean_, self.scale_ = std.mean, std.scale
        self.coef_ = raw.T.astype(np.float64) if self._multi else raw[:, 0].astype(np.float64)
        self.intercept_ = b if self._multi else float(b[0])
        self.alpha_ = fit.alpha.numpy() if self._multi else float(fit.alpha[0])
        self.val_score_ = fit.val_score.numpy() if self._multi else float(fit.val_score[0])
        nz = (raw != 0).sum(0)
        self.n_nonzero_ = nz if self._multi else int(nz[0])
        self.n_features_in_ = X.shape[1]
        if fit.prevalence is not None:
            p = fit.prevalence.numpy().astype(np.float64)
            self.threshold_ = p if self._multi else float(p[0])
        return self

    def decision_function(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return X @ np.asarray(self.coef_).T + self.intercept_

    def _score(self, X, y) -> np.ndarray:
        raise NotImplementedError

    def score(self, X, y, sample_weight=None) -> float:
        """R² (regressor) or balanced accuracy (classifier); the mean over targets when y has several columns."""
        return float(np.mean(self._score(X, y)))


class SparseLinearProbe(RegressorMixin, _SparseProbe):
    """L1 linear regression (the Lasso) on standardised inputs, λ chosen on validation R²."""

    _kind = "regression"

    def predict(self, X) -> np.ndarray:
        return self.decision_function(X)

    def _score(self, X, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        p = self.predict(X).reshape(len(X), -1)
        return r2_scores(torch.from_numpy(y), torch.from_numpy(p)).numpy()


class SparseLogisticProbe(ClassifierMixin, _SparseProbe):
    """L1 logistic regression on standardised inputs, λ chosen on validation balanced accuracy."""

    _kind = "classification"

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return p if self._multi else np.stack([1.0 - p, p], 1)

    def predict(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return (p > self.threshold_).astype(np.int64)

    def _score(self, X, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        p = self.predict(X).reshape(len(X), -1).astype(np.float64)
        return balanced_accuracies(torch.from_numpy(y), torch.from_numpy(p)).numpy()
