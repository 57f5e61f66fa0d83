"""``VideoC3D``: the paper's 3D-CNN visual features, trained on the utterance labels.

Paper Sec. III: each utterance clip goes through three blocks of two 3-D convolutions and a
max-pooling (ReLU), then an MLP whose 512-d hidden layer is the visual feature. The network
is trained supervised on the emotion labels in ``fit``; ``transform`` returns the hidden
layer. Clips are arrays (frames x height x width x 3); video files are decoded with PyAV
(``av``) or OpenCV (``cv2``), whichever is installed - the optional ``video`` extra
(``pip install "sklearn-cberl[video]"``) brings PyAV.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.helper import predefined_split
from torch.nn import functional as F

from .._config import uses_torch_threads
from .._torch_estimator import (
    TRAINING_CONSTRAINTS,
    PlainPrintLog,
    RowDataset,
    TermsNet,
    fitted_history,
    resolve_device,
    rows_as_batch,
    seed_from,
    torch_seed,
    training_callbacks,
)
from ..conversation import validation_split
from ..nn.c3d import C3DNet
from ._media import media_and_dialogues

__all__ = ["VideoC3D", "C3DNet", "read_video"]

_EXTRA_HINT = "install the optional 'video' extra: pip install \"sklearn-cberl[video]\" (PyAV)"


def read_video(path, *, decoder="auto", max_frames=None) -> np.ndarray:
    """Decode a video file to a ``(frames, height, width, 3)`` uint8 RGB array.

    Parameters
    ----------
    path : str or path-like
    decoder : {"auto", "av", "opencv"}, default="auto"
        PyAV (preferred under "auto") or OpenCV.
    max_frames : int, default=None
        Stop after this many frames.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file {path!r} not found.")
    if decoder not in ("auto", "av", "opencv"):
        raise ValueError(f"decoder={decoder!r}: expected 'auto', 'av' or 'opencv'.")
    frames = []
    if decoder in ("auto", "av"):
        try:
            import av
        except ImportError as exc:
            if decoder == "av":
                raise ImportError(f"decoder='av' needs PyAV: {_EXTRA_HINT}.") from exc
        else:
            with av.open(path) as container:
                for frame in container.decode(video=0):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if max_frames is not None and len(frames) >= max_frames:
                        break
            decoder = "done"
    if decoder in ("auto", "opencv"):
        try:
            import cv2
        except ImportError as exc:
            raise ImportError(f"Decoding video files needs PyAV or OpenCV: {_EXTRA_HINT}.") from exc
        capture = cv2.VideoCapture(path)
        try:
            while max_frames is None or len(frames) < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
    if not frames:
        raise ValueError(f"Video file {path!r} has no decodable frames.")
    return np.stack(frames)


class VideoC3D(TransformerMixin, BaseEstimator):
    """3D-CNN visual features trained on the utterance labels (paper Sec. III).

    Parameters
    ----------
    n_components : int, default=512
        Width of the MLP hidden layer returned by ``transform`` (the paper's 512).
    clip_shape : (int, int, int), default=(16, 64, 64)
        Every clip is resampled (trilinear) to ``(frames, height, width)`` so clips of any
        length and resolution batch together.
    channels : tuple of int, default=(32, 64, 128)
        Output channels of the three convolution blocks.
    max_epochs : int, default=20
        Training epochs (cross-entropy on the utterance labels, Adam; trained through
        skorch, :class:`C3DTrainingNet`).
    batch_size : int, default=16
    lr : float, default=1e-3
    weight_decay : float, default=1e-5
    dropout : float, default=0.5
        Dropout before the classification layer.
    early_stopping : {"loss"} or None, default=None
        ``"loss"``: stop after ``patience`` epochs without a lower validation cross-entropy
        and keep the best epoch's weights. Validation set: ``fit``'s ``validation_data``,
        else ``validation_fraction`` of the dialogues (of the clips when ``X`` carries no
        ``dialogue_id``). None trains ``max_epochs`` epochs and keeps the last weights.
    validation_fraction : float in (0, 1), default=0.1
    patience : int, default=10
        Epochs without improvement before stopping (only with ``early_stopping``).
    decoder : {"auto", "av", "opencv"}, default="auto"
        Video-file decoder (see :func:`read_video`).
    prefix : str, default="visual"
        Output columns are ``<prefix>_<i>``.
    device : str, default="auto"
    verbose : int, default=0
        0: silent; 1: one line per epoch (skorch's epoch table on stderr); 2: also a
        per-batch progress bar in a terminal.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, dropout, batch order and the held-out clips, without
        touching the global RNG.

    Attributes
    ----------
    net_ : C3DNet
        The trained network (on CPU).
    classes_ : ndarray
        Labels seen in ``fit``.
    history_ : list of dict
        One dict per epoch: ``epoch``, ``train_loss`` (mean cross-entropy), ``valid_loss``
        (with a validation set) and ``dur`` (seconds).
    n_iter_, best_epoch_ : int
        The epochs run, and the epoch whose weights the network holds (the last without
        early stopping).
    n_features_out_ : int

    Notes
    -----
    ``X`` is a 5-D array ``(n_clips, frames, height, width, 3)``, a sequence of 4-D clips
    of any sizes, or a sequence of video-file paths (a one-column frame of them, which may
    also carry the metadata columns ``dialogue_id``, ``speaker``, ``turn``: ``dialogue_id``
    keeps each dialogue on one side of the validation hold-out). uint8 clips are scaled to
    [0, 1]; float clips are taken as already in [0, 1].
    """

    _parameter_constraints: dict = {
        **TRAINING_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "clip_shape": ["array-like"],
        "channels": ["array-like"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "decoder": [StrOptions({"auto", "av", "opencv"})],
        "prefix": [str],
    }

    def __init__(
        self,
        n_components=512,
        *,
        clip_shape=(16, 64, 64),
        channels=(32, 64, 128),
        max_epochs=20,
        batch_size=16,
        lr=1e-3,
        weight_decay=1e-5,
        dropout=0.5,
        early_stopping=None,
        validation_fraction=0.1,
        patience=5,
        decoder="auto",
        prefix="visual",
        device="auto",
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.clip_shape = clip_shape
        self.channels = channels
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.decoder = decoder
        self.prefix = prefix
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ input
    def _check_clip_shape(self):
        shape = tuple(self.clip_shape)
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
            raise ValueError(
                f"clip_shape={self.clip_shape!r}: expected (frames, height, width) positive ints."
            )

    def _uint8_clips(self, X) -> torch.Tensor:
        # Resampled clips are kept as uint8 on the CPU (1 byte per value: 16x64x64 RGB clips
        # take 196 KiB each) and turned into float batches on the fly.
        batches = self._batches(X, torch.device("cpu"))
        return torch.cat(
            [((b + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8) for b in batches]
        )

    @staticmethod
    def _items(X) -> list:
        """A sequence of clips/paths as a list (one-column frames accepted)."""
        if isinstance(X, (str, os.PathLike)) or (isinstance(X, np.ndarray) and X.ndim == 4):
            raise TypeError(
                "X is a single clip: expected a 5-D array or a sequence of clips/paths."
            )
        X, _ = media_and_dialogues(X)
        if isinstance(X, pd.DataFrame) and X.shape[1] != 1:
            raise ValueError(
                f"X is a DataFrame with {X.shape[1]} columns besides the metadata: expected "
                "one column of clips or video paths."
            )
        items = list(X.iloc[:, 0] if isinstance(X, pd.DataFrame) else X)
        if not items:
            raise ValueError("X is empty: expected at least one clip.")
        return items

    def _clips(self, X, device) -> torch.Tensor:
        """Validate and resample clips to a float32 ``(n, 3, T, H, W)`` tensor on ``device``."""
        shape = tuple(int(s) for s in self.clip_shape)
        if isinstance(X, np.ndarray) and X.ndim == 5:
            return self._resample(X, shape, device, "X")
        items = self._items(X)
        out = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                item = read_video(item, decoder=self.decoder)
            out.append(self._resample(np.asarray(item)[None], shape, device, f"clip {i}"))
        return torch.cat(out)

    @staticmethod
    def _resample(clips: np.ndarray, shape, device, name) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(
                f"{name} has shape {clips.shape[1:]}: expected (frames, height, width, 3) RGB."
            )
        if clips.dtype.kind not in "fiu":
            raise TypeError(f"{name} has dtype {clips.dtype}: expected uint8 or float pixels.")
        scale = 255.0 if clips.dtype == np.uint8 else 1.0
        x = torch.as_tensor(np.ascontiguousarray(clips), device=device)
        x = x.permute(0, 4, 1, 2, 3).to(torch.float32) / scale
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite pixels.")
        if tuple(x.shape[2:]) != shape:
            x = F.interpolate(x, size=shape, mode="trilinear", align_corners=False)
        return x - 0.5  # centre pixel intensities

    def _batches(self, clips, device):
        """Yield preprocessed batches without holding every resampled clip at once."""
        step = int(self.batch_size)
        if isinstance(clips, np.ndarray) and clips.ndim == 5:
            for start in range(0, len(clips), step):
                yield self._clips(clips[start : start + step], device)
        else:
            items = self._items(clips)
            for start in range(0, len(items), step):
                yield self._clips(items[start : start + step], device)

    # ------------------------------------------------------------------ estimator API
    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y, validation_data=None):
        """Train the 3D-CNN to classify the utterance emotions.

        Parameters
        ----------
        X : 5-D array, sequence of clips, or sequence of video paths
        y : array-like of shape (n_clips,)
            Emotion labels.
        validation_data : tuple (X_val, y_val), default=None
            Clips whose cross-entropy is recorded per epoch (``valid_loss`` in
            ``history_``) and, with ``early_stopping``, monitored.

        Returns
        -------
        self
        """
        self._check_clip_shape()
        if y is None:
            raise ValueError("VideoC3D is trained on the utterance labels: y is required.")
        device = resolve_device(self.device)
        _, dialogues = media_and_dialogues(X)
        clips = self._uint8_clips(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != clips.shape[0]:
            raise ValueError(
                f"y has shape {y.shape}: expected ({clips.shape[0]},), one label per clip."
            )
        self.classes_, codes = np.unique(y, return_inverse=True)
        target = torch.as_tensor(codes, dtype=torch.long)
        seed = seed_from(self.random_state)
        valid = None
        if validation_data is not None:
            X_val, y_val = validation_data
            unknown = set(np.unique(y_val).tolist()) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"validation_data has labels absent from y: {sorted(unknown)}.")
            codes_val = np.searchsorted(self.classes_, np.asarray(y_val))
            valid = (self._uint8_clips(X_val), torch.as_tensor(codes_val, dtype=torch.long))
        elif self.early_stopping:
            split = validation_split(
                np.arange(len(target)) if dialogues is None else dialogues,
                self.validation_fraction,
                seed % 2**32,
            )
            if split is not None:
                kept, held = map(torch.as_tensor, split)
                valid = (clips[held], target[held])
                clips, target = clips[kept], target[kept]
        with torch_seed(seed, device):
            module = C3DNet(
                tuple(int(c) for c in self.channels),
                int(self.n_components),
                max(len(self.classes_), 2),
                float(self.dropout),
            )
            net = C3DTrainingNet(
                module,
                optimizer=torch.optim.Adam,
                optimizer__weight_decay=float(self.weight_decay),
                lr=float(self.lr),
                max_epochs=int(self.max_epochs),
                batch_size=int(self.batch_size),
                iterator_train__shuffle=True,
                iterator_train__collate_fn=rows_as_batch,
                iterator_valid__collate_fn=rows_as_batch,
                # A DataLoader draws a seed at every pass: from a private generator, so that
                # a validation set does not change the training draws.
                iterator_valid__generator=torch.Generator(),
                train_split=None if valid is None else predefined_split(RowDataset(*valid)),
                callbacks=training_callbacks(
                    estimator="VideoC3D",
                    validating=valid is not None,
                    early_stopping=self.early_stopping,
                    patience=self.patience,
                    verbose=self.verbose,
                    hint=f"Try a lower lr (now {self.lr!r}).",
                ),
                # No epoch table is built at verbose=0: tabulating it costs a third of an
                # epoch of the small networks the tests train.
                callbacks__print_log=(PlainPrintLog("VideoC3D") if self.verbose else None),
                device=str(device),
                verbose=self.verbose,
            )
            net.fit(RowDataset(clips, target), y=None)
        for name, value in fitted_history(net).items():
            setattr(self, name, value)
        self.net_ = net.module_.cpu().eval()
        self.n_features_out_ = int(self.n_components)
        return self

    def transform(self, X):
        """The 512-d hidden layer of each clip (deterministic: eval mode, no dropout).

        Returns
        -------
        ndarray of shape (n_clips, n_components), float32
        """
        return self._infer(X, lambda net, batch: net.features(batch)).astype(np.float32)

    def predict(self, X):
        """Emotion predicted by the 3D-CNN's own head (a diagnostic of the visual stream)."""
        return self.classes_[self._infer(X, lambda net, batch: net(batch).argmax(1))]

    @uses_torch_threads
    def _infer(self, X, step):
        """``step(net, batch)`` over the clips in batches, in eval mode on ``device``."""
        check_is_fitted(self, "net_")
        device = resolve_device(self.device)
        net = self.net_.to(device).eval()
        with torch.no_grad():
            out = [step(net, batch).cpu() for batch in self._batches(X, device)]
        self.net_ = net.cpu()  # the fitted network stays on the CPU between calls
        return torch.cat(out).numpy()

    def get_feature_names_out(self, input_features=None):
        """``<prefix>_0 .. <prefix>_<k-1>``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # clips are 5-D arrays or sequences of clips
        tags.target_tags.required = True  # trained on the utterance labels
        return tags


def _centred(clips: torch.Tensor) -> torch.Tensor:
    """uint8 clips as the network's float input, centred as ``VideoC3D._resample``'s."""
    return clips.to(torch.float32) / 255.0 - 0.5


class C3DTrainingNet(TermsNet):
    """The skorch net that trains :class:`~sklearn_cberl.nn.c3d.C3DNet` on the labels.

    The loss of a batch is the cross-entropy of the network's head on the utterance labels
    (paper Sec. III). Batches are ``(uint8 clips, label codes)``
    (:class:`~sklearn_cberl._torch_estimator.RowDataset` over the clips kept as uint8 on the
    CPU): a batch becomes float only once it is on the net's device, so memory holds one
    byte per pixel outside the current batch.
    """

    def loss_terms(self, X, y, training):
        logits = self.module_(_centred(X))
        return {"loss": F.cross_entropy(logits, y)}
