"""The choice rule: the simplest candidate whose validation score is within the noise of the best.

One validation split cannot separate configurations whose scores differ by less than its own
noise: on MELD text (1.1k validation utterances) the five stage configurations scored within
about one point, and the plain best-score choice picked a different one for every seed, losing
0.7 WAF1 on test against the classifier alone (``docs/selection.md``). The rule here is the
"one-standard-error rule" of Hastie, Tibshirani & Friedman (*The Elements of Statistical
Learning*, 2nd ed., Sec. 7.10): among candidates ordered from simplest to most complex, take
the first whose score is at most ``tolerance`` standard errors below the best. The standard
error is that of the *gap* between the two candidates, from a paired bootstrap over
validation dialogues (utterances of one dialogue are not independent; the same resamples
score every candidate, so what both get right or wrong cancels).

The bootstrap scores stored predictions with any scikit-learn scorer
(:class:`StoredPredictions`), so no model predicts twice.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import get_scorer

__all__ = [
    "StoredPredictions",
    "bootstrap_scores",
    "choose_simplest",
    "choose_within_noise",
    "stored_predictions",
]

#: Bootstrap resamples: the standard error of a standard error from B resamples is about
#: 1/sqrt(2B) of it, 5 % at 200 - enough for a rule that compares it with a gap.
N_RESAMPLES = 200


class StoredPredictions(ClassifierMixin, BaseEstimator):
    """A fitted classifier's outputs on fixed rows, looked up by row number.

    ``predict(rows)`` returns ``predicted[rows]`` (and ``predict_proba`` likewise), so a
    scikit-learn scorer called as ``scorer(stored, rows, y[rows])`` scores a resample of the
    rows without the model.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
    predicted : ndarray of shape (n_rows,)
    proba : ndarray of shape (n_rows, n_classes), default=None
    """

    def __init__(self, classes, predicted, proba=None):
        self.classes = classes
        self.predicted = predicted
        self.proba = proba

    @property
    def classes_(self):
        return self.classes

    def __sklearn_is_fitted__(self):
        return True

    def predict(self, rows):
        return self.predicted[np.asarray(rows)]

    def predict_proba(self, rows):
        if self.proba is None:
            raise AttributeError("no stored probabilities")
        return self.proba[np.asarray(rows)]


def stored_predictions(model, X) -> StoredPredictions:
    """A fitted classifier's predictions (and probabilities when it has them) on ``X``."""
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return StoredPredictions(model.classes_, np.asarray(model.predict(X)), proba)


def bootstrap_scores(candidates, y, groups, scoring, random_state=0, n_resamples=N_RESAMPLES):
    """Every candidate's score on the same bootstrap resamples of whole groups.

    Parameters
    ----------
    candidates : list of StoredPredictions
        Outputs of each candidate on the same rows.
    y : array-like of shape (n_rows,)
    groups : array-like of shape (n_rows,)
        Dialogue of each row: a resample draws whole dialogues with replacement.
    scoring : str or callable
        A scikit-learn scorer.
    random_state : int, default=0
    n_resamples : int, default=200

    Returns
    -------
    ndarray of shape (n_candidates, n_resamples)
    """
    scorer = get_scorer(scoring)
    y = np.asarray(y)
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(group, kind="stable")
    rows_of = np.split(order, np.cumsum(np.bincount(group))[:-1])
    rng = np.random.default_rng(random_state)
    scores = np.empty((len(candidates), n_resamples))
    with warnings.catch_warnings():
        # A resample can miss a rare class: its F1 is 0 by definition, as in the full score.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for b in range(n_resamples):
            drawn = rng.integers(len(rows_of), size=len(rows_of))
            rows = np.concatenate([rows_of[g] for g in drawn])
            for i, stored in enumerate(candidates):
                scores[i, b] = scorer(stored, rows, y[rows])
    return scores


def choose_simplest(scores, resampled, tolerance=1.0):
    """The first (simplest) candidate within ``tolerance`` standard errors of the best.

    Parameters
    ----------
    scores : array-like of shape (n_candidates,)
        Validation scores, simplest candidate first (higher is better).
    resampled : ndarray of shape (n_candidates, n_resamples)
        The same candidates' scores on paired bootstrap resamples
        (:func:`bootstrap_scores`).
    tolerance : float, default=1.0
        In standard errors of the gap to the best; 0 takes the best score (the first of
        equal ones).

    Returns
    -------
    chosen : int
        Index of the chosen candidate.
    gap_se : ndarray of shape (n_candidates,)
        Standard error of each candidate's gap to the best (0 for the best itself).
    """
    scores = np.asarray(scores, dtype=float)
    best = int(np.argmax(scores))
    gap_se = np.std(resampled[best] - resampled, axis=1, ddof=1)
    # (tolerance may be inf: "always the simplest"; inf * 0 for the best itself would be nan)
    margin = np.where(gap_se > 0, tolerance * np.where(gap_se > 0, gap_se, 1), 0.0)
    within = scores >= scores[best] - margin
    return int(np.argmax(within)), gap_se


def choose_within_noise(scores, outputs, y, groups, scoring, tolerance, random_state=0):
    """:func:`choose_simplest` with the standard errors of :func:`bootstrap_scores`.

    Parameters
    ----------
    scores : array-like of shape (n_candidates,)
        Validation scores, simplest candidate first.
    outputs : list of StoredPredictions
        The same candidates' outputs on the validation rows ``y``.
    y, groups : array-like of shape (n_rows,)
        Validation labels and the dialogue of each row.
    scoring : str or callable
    tolerance : float
    random_state : int, default=0

    Returns
    -------
    chosen : int
    gap_se : ndarray of shape (n_candidates,)
    """
    resampled = bootstrap_scores(outputs, y, groups, scoring, random_state=random_state)
    return choose_simplest(scores, resampled, tolerance)
