"""``make_conversations``: a synthetic MERC benchmark that is hard in the ways real data is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ..conversation import DIALOGUE, SPEAKER, TURN

__all__ = ["make_conversations", "MELD_CLASSES", "MELD_CLASS_WEIGHTS"]

#: MELD's seven emotions, majority first.
MELD_CLASSES = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
#: Class proportions close to MELD's (fear 1.9 %, disgust 2.6 %).
MELD_CLASS_WEIGHTS = (0.47, 0.17, 0.12, 0.11, 0.085, 0.026, 0.019)

_DEFAULT_MODALITIES = {"text": 100, "audio": 100, "visual": 512}
# Per-modality (signal strength, number of label groups the modality can tell apart).
# Text is the most informative stream, audio carries arousal-like coarse groups, visual is
# weak and wide: as in MERC, where text dominates and video adds little on its own.
_DEFAULT_STRENGTH = {"text": 1.0, "audio": 0.8, "visual": 0.6}


def _partitions(n_classes, names, rng):
    """Assign each class a group per modality so no single modality separates all classes.

    Modality ``i`` sees the label coarsened to ``ceil(n_classes / (i + 2))`` groups (text
    the finest, later modalities coarser); the combination of groups over the modalities
    identifies every class, so some classes are separable only by combining modalities.
    """
    names = list(names)
    if len(names) == 1:
        return {names[0]: np.arange(n_classes)}
    sizes = [
        max(2, min(n_classes - 1, int(np.ceil(n_classes / (i + 2))))) for i in range(len(names))
    ]
    for _ in range(1000):
        groups = {name: rng.permutation(np.arange(n_classes) % g) for name, g in zip(names, sizes)}
        codes = {tuple(groups[name][c] for name in names) for c in range(n_classes)}
        if len(codes) == n_classes:
            return groups
    raise ValueError(
        f"Could not separate {n_classes} classes with {len(names)} modalities; add modalities."
    )


def make_conversations(
    n_dialogues: int = 200,
    n_classes: int = 7,
    class_weights: Sequence[float] | None = None,
    modalities: Mapping[str, int] | None = None,
    *,
    dialogue_length: tuple[int, int] = (6, 24),
    n_speakers: tuple[int, int] = (2, 3),
    persistence: float = 0.8,
    contagion: float = 0.1,
    noise: float | Mapping[str, float] = 1.0,
    speaker_shift: float = 0.5,
    class_sep: float = 1.0,
    class_names: Sequence[str] | None = None,
    random_state=None,
):
    """Generate imbalanced multimodal conversations with context-dependent emotions.

    The generator reproduces the properties that make MERC hard:

    * **Imbalanced labels.** Marginal class frequencies follow ``class_weights`` (default
      close to MELD: the two rarest classes, disgust and fear, are under 3 %).
    * **Context.** Each speaker's emotion persists from one of their turns to the next
      (``persistence``) and spreads from the previous speaker (``contagion``); otherwise
      it is drawn afresh. Neighbouring utterances therefore carry evidence about a
      label, so a context/graph model beats a per-utterance model (the tests check a
      >= 5 WAF1-point gap for a simple context-aware reference).
    * **Modalities of different informativeness and noise.** Each modality only sees a
      coarsened label (classes merged into groups), with its own signal strength and
      noise; text is the most informative, visual the weakest and widest.
    * **Classes separable only by combining modalities.** No modality on its own tells all
      classes apart; the combination of their groups does.
    * **Speaker nuisance.** Every speaker adds a personal offset to all of their features.

    Parameters
    ----------
    n_dialogues : int, default=200
        Number of dialogues.
    n_classes : int, default=7
        Number of emotion classes.
    class_weights : sequence of float, default=None
        Class proportions (normalised). Default: MELD-like for 7 classes, otherwise the
        MELD-like profile resampled to ``n_classes`` (the rarest two stay rare).
    modalities : dict of str -> int, default={"text": 100, "audio": 100, "visual": 512}
        Modality name -> width; columns are named ``<name>_<i>``.
    dialogue_length : (int, int), default=(6, 24)
        Inclusive range of utterances per dialogue.
    n_speakers : (int, int), default=(2, 3)
        Inclusive range of speakers per dialogue.
    persistence : float, default=0.8
        Probability that a speaker keeps the emotion of their previous utterance.
    contagion : float, default=0.1
        Probability that a speaker adopts the emotion of the previous utterance.
    noise : float or dict, default=1.0
        Noise scale (relative to the default per-modality noise), overall or per modality.
    speaker_shift : float, default=0.5
        Scale of the per-speaker feature offset.
    class_sep : float, default=1.0
        Distance between class prototypes; larger is easier. The default gives a
        per-utterance logistic regression roughly 55-65 WAF1, in MELD's range.
    class_names : sequence of str, default=None
        Label strings; default MELD's names for 7 classes, else ``"emotion_<k>"``.
    random_state : int, RandomState instance or None, default=None
        Seed; the output is a deterministic function of it.

    Returns
    -------
    X : DataFrame of shape (n_utterances, 3 + sum(widths))
        ``dialogue_id`` (str), ``speaker`` (str), ``turn`` (int) and the feature blocks.
    y : Series of str, named ``"emotion"``
        The emotion of each utterance.
    """
    rng = check_random_state(random_state)
    modalities = dict(_DEFAULT_MODALITIES if modalities is None else modalities)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    if not modalities or any(int(w) < 1 for w in modalities.values()):
        raise ValueError(f"modalities must map names to widths >= 1, got {modalities}.")
    if not 0 <= persistence + contagion <= 1 or persistence < 0 or contagion < 0:
        raise ValueError("persistence and contagion must be >= 0 and sum to at most 1.")
    if class_weights is None:
        base = np.asarray(MELD_CLASS_WEIGHTS)
        class_weights = (
            base if n_classes == 7 else np.interp(np.linspace(0, 6, n_classes), np.arange(7), base)
        )
    weights = np.asarray(class_weights, dtype=float)
    if weights.shape != (n_classes,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"class_weights must be {n_classes} non-negative numbers, got {class_weights}."
        )
    weights = weights / weights.sum()
    if class_names is None:
        class_names = MELD_CLASSES if n_classes == 7 else [f"emotion_{k}" for k in range(n_classes)]
    class_names = np.asarray(class_names, dtype=object)
    if len(class_names) != n_classes:
        raise ValueError(f"class_names must have {n_classes} entries, got {len(class_names)}.")
    noise_of = noise if isinstance(noise, Mapping) else dict.fromkeys(modalities, noise)

    # --- labels: per-speaker persistence + contagion Markov process -------------------------
    lengths = rng.randint(dialogue_length[0], dialogue_length[1] + 1, size=n_dialogues)
    dialogue_rows, speaker_rows, turn_rows, labels = [], [], [], []
    for d, length in enumerate(lengths):
        k = rng.randint(n_speakers[0], n_speakers[1] + 1)
        # Alternating turns with occasional repeats, as in real two/three-party talk.
        speakers = np.empty(length, dtype=np.int64)
        speakers[0] = rng.randint(k)
        for t in range(1, length):
            stay = rng.rand() < 0.2
            speakers[t] = (
                speakers[t - 1] if stay else (speakers[t - 1] + 1 + rng.randint(k - 1)) % k
            )
        last = {}
        for t in range(length):
            s = speakers[t]
            u = rng.rand()
            if s in last and u < persistence:
                label = last[s]
            elif t > 0 and u < persistence + contagion:
                label = labels[-1]
            else:
                label = rng.choice(n_classes, p=weights)
            last[s] = label
            labels.append(label)
        dialogue_rows += [f"dlg{d:04d}"] * length
        speaker_rows += [f"dlg{d:04d}_spk{s}" for s in speakers]
        turn_rows += list(range(length))
    labels = np.asarray(labels)
    n = len(labels)
    speaker_codes = pd.factorize(pd.Series(speaker_rows))[0]

    # --- features: coarse class prototypes per modality + speaker offset + noise --------------
    groups = _partitions(n_classes, modalities, rng)
    blocks = {}
    for name, width in modalities.items():
        width = int(width)
        strength = _DEFAULT_STRENGTH.get(name, 0.8)
        n_groups = groups[name].max() + 1
        # Signal lives in a low-dimensional subspace of the block, as in real embeddings.
        rank = min(width, 16)
        if n_groups > rank:
            rank = min(width, n_groups)
        basis = np.linalg.qr(rng.randn(width, rank))[0].T  # (rank, width) orthonormal rows
        # Equidistant group prototypes (orthonormal directions) keep the difficulty stable
        # across seeds; random prototypes made some seeds trivially easy. A block narrower
        # than its number of groups cannot hold orthogonal prototypes: unit random ones then.
        if n_groups <= rank:
            directions = np.linalg.qr(rng.randn(rank, n_groups))[0].T
        else:
            directions = rng.randn(n_groups, rank)
            directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        prototypes = directions * (1.6 * strength * class_sep)
        speaker_offsets = rng.randn(speaker_codes.max() + 1, rank) * speaker_shift / np.sqrt(rank)
        latent = prototypes[groups[name][labels]] + speaker_offsets[speaker_codes]
        scale = float(noise_of.get(name, 1.0)) * (1.5 if width > 200 else 1.0)
        values = latent @ basis + rng.randn(n, width) * scale
        blocks[name] = values.astype(np.float64)

    frame = pd.DataFrame({DIALOGUE: dialogue_rows, SPEAKER: speaker_rows, TURN: turn_rows})
    features = pd.DataFrame(
        np.hstack(list(blocks.values())),
        columns=[f"{name}_{i}" for name, width in modalities.items() for i in range(int(width))],
    )
    X = pd.concat([frame, features], axis=1)
    y = pd.Series(class_names[labels], name="emotion")
    return X, y
