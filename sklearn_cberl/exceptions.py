"""The warnings and errors sklearn-cberl raises beyond scikit-learn's own.

scikit-learn's ``ConvergenceWarning`` and ``NotFittedError`` are used as they are; these two
name failures that are specific to training torch models and to over-sampling.
"""

from __future__ import annotations

__all__ = ["SyntheticRowsWarning", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """A training loss became NaN or infinite.

    Subclasses :class:`FloatingPointError` (itself an ``ArithmeticError``) so callers can
    catch numeric failures generically; the message names the estimator, the epoch, the
    loss term and a hint (usually: lower ``lr``, standardise the features).
    """


class SyntheticRowsWarning(UserWarning):
    """An over-sampler added fewer synthetic rows than requested, or rows of lower quality
    than asked for (the message gives the counts)."""
