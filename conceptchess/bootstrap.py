"""The cluster bootstrap's draw, shared by every interval that resamples clusters (games, experts).

Rows of one cluster (the positions of one game, the answers of one expert) are not independent, so
an interval resamples whole clusters: each resample draws as many clusters as there are, with
replacement. The probes' test-game interval weighs each game by how often it was drawn
(:func:`cluster_counts`); the expert study's interval goes on to resample the answers of each drawn
expert afresh (:func:`conceptchess.study.report.bootstrap_delta`).

>>> draws = draw_clusters(np.random.default_rng(0), 3, 2)
>>> draws.shape, cluster_counts(draws, 3).sum(axis=1).tolist()
((2, 3), [3.0, 3.0])
"""

from __future__ import annotations

import numpy as np


def draw_clusters(rng: np.random.Generator, n_clusters: int, resamples: int) -> np.ndarray:
    """The clusters each resample draws: ``(resamples, n_clusters)`` indices in ``[0, n_clusters)``, with replacement."""
    return rng.integers(0, n_clusters, size=(resamples, n_clusters))


def cluster_counts(draws: np.ndarray, n_clusters: int) -> np.ndarray:
    """How often each resample drew each cluster: ``(resamples, n_clusters)`` float64 (each row sums to the draws per resample)."""
    resamples, per_resample = draws.shape
    counts = np.zeros((resamples, n_clusters), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(resamples), per_resample), draws.ravel()), 1.0)
    return counts
