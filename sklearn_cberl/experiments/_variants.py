"""The reproduction's models (one per table role) and how each is fitted for one seed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..conversation import METADATA_COLUMNS
from ..paper import PAPER_AUGMENTATION, TABLE_VI_REFERENCE_SIZE
from ._protocol import fit_with_validation, select_on_validation

__all__ = [
    "SAMPLER_LABELS",
    "Variant",
    "build_variants",
    "fit_utterance_baseline",
    "utterance_features",
]

#: The over-samplers compared in front of the same fusion + classifier: ``Variant.aug`` code
#: -> class name (the imbalanced-learn class for all but ``emogan``).
SAMPLER_LABELS = {
    "emogan": "EmoGANSampler",
    "ros": "RandomOverSampler",
    "smote": "SMOTE",
    "borderline": "BorderlineSMOTE",
    "adasyn": "ADASYN",
}


@dataclass(frozen=True)
class Variant:
    """One model of the report: ``aug`` -> ``fuse`` -> classifier with ``clf`` parameters."""

    name: str
    aug: str | None = "emogan"  # None | emogan | ros | smote | borderline | adasyn
    fuse: bool = True
    clf: tuple = ()  # CBERLClassifier parameter overrides, as (key, value) pairs
    kind: str = "cberl"  # cberl | lr | mlp
    tables: tuple = field(default=(), compare=False)


def _ablation_name(fuse, gamma, mask, boost) -> str:
    return "".join("+" if on else "-" for on in (fuse, gamma, mask, boost))


def build_variants(include_gamma_sweep: bool = True) -> tuple[list[Variant], dict]:
    """Every model needed by Tables I-V and Fig. 8, each fitted once.

    Parameters
    ----------
    include_gamma_sweep : bool, default=True
        Add the models of Fig. 8 (focal gamma 0-5).

    Returns
    -------
    variants : list of Variant
    roles : dict
        A map from each table role (``"CBERL"``, ``"ablation ++-+"``, ``"CBERL (D)"``,
        ``"gamma=3"``, ...) to the variant that fills it (several roles share one model,
        e.g. ``CBERL`` = ``ablation ++++`` = ``gamma=3``).
    """
    variants: dict[tuple, Variant] = {}
    roles: dict[str, Variant] = {}

    def add(role, aug="emogan", fuse=True, clf=(), kind="cberl"):
        key = (aug, fuse, clf, kind)
        if key not in variants:
            variants[key] = Variant(role, aug, fuse, clf, kind)
        roles[role] = variants[key]

    def clf(gamma=3.0, mask=0.2, boost=True, **extra):
        params = {
            "gamma": float(gamma),
            "mask_rate": float(mask),
            "ensemble": "adaboost" if boost else "mlp",
            **extra,
        }
        return tuple(sorted(params.items()))

    add("CBERL", clf=clf())
    add("CBERL (no aug)", aug=None, clf=clf())
    add("LR (per-utterance)", aug=None, fuse=False, kind="lr")
    add("MLP (per-utterance)", aug=None, fuse=False, kind="mlp")
    add(
        "bc-LSTM-style (context, no graph)",
        aug=None,
        fuse=False,
        clf=clf(gamma=0, mask=0, boost=False, n_layers=0),
    )
    for aug in SAMPLER_LABELS:
        if aug != "emogan":
            add(f"{SAMPLER_LABELS[aug]} + CBERL", aug=aug, clf=clf())
    for fuse in (True, False):
        for gamma in (True, False):
            for mask in (True, False):
                for boost in (True, False):
                    add(
                        f"ablation {_ablation_name(fuse, gamma, mask, boost)}",
                        fuse=fuse,
                        clf=clf(gamma=3 if gamma else 0, mask=0.2 if mask else 0, boost=boost),
                    )
    # Table V: fusion and AdaBoost stay on; N = no augmentation, masking or gamma; D/M/A add
    # only augmentation / masking / gamma.
    add("CBERL (N)", aug=None, clf=clf(gamma=0, mask=0))
    add("CBERL (D)", clf=clf(gamma=0, mask=0))
    add("CBERL (M)", aug=None, clf=clf(gamma=0))
    add("CBERL (A)", aug=None, clf=clf(mask=0))
    if include_gamma_sweep:
        for gamma in range(6):
            add(f"gamma={gamma}", clf=clf(gamma=gamma))
    return list(variants.values()), roles


def _sampling_strategy(data):
    from ..strategies import AddPerClass

    table = data.paper or "meld"  # the demo data has MELD's classes
    return AddPerClass(PAPER_AUGMENTATION[table], reference_size=TABLE_VI_REFERENCE_SIZE[table])


def _make_sampler(aug, strategy, seed, device, verbose):
    from imblearn import over_sampling as imblearn_samplers

    from ..over_sampling import ConversationSampler, EmoGANSampler

    if aug == "emogan":
        return EmoGANSampler(
            sampling_strategy=strategy, device=device, random_state=seed, verbose=verbose
        )
    cls = getattr(imblearn_samplers, SAMPLER_LABELS[aug])
    return ConversationSampler(cls(sampling_strategy=strategy, random_state=seed))


def utterance_features(X):
    """The feature columns of a conversation frame: what a per-utterance model sees."""
    return X.drop(columns=[c for c in METADATA_COLUMNS if c in X.columns])


def fit_utterance_baseline(kind, data, seed):
    """A per-utterance baseline fitted on ``data.X_train``: ``kind="lr"`` (logistic
    regression, C chosen on validation WAF1) or ``"mlp"`` (hidden size chosen likewise)."""
    if kind == "lr":
        grid = [
            make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
            for C in (0.01, 0.1, 1.0)
        ]
    else:
        grid = [
            make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    hidden_layer_sizes=(h,),
                    alpha=1e-3,
                    early_stopping=True,
                    max_iter=200,
                    random_state=seed,
                ),
            )
            for h in (128, 256)
        ]
    _, _, model, _ = select_on_validation(
        enumerate(grid),
        utterance_features(data.X_train),
        data.y_train,
        utterance_features(data.X_valid),
        data.y_valid,
    )
    return model


class _Prefixes:
    """Per-seed cache of the shared pipeline prefixes (augmented train set, fitted DJVAE).

    Hand-written rather than an imblearn ``Pipeline(memory=...)``: joblib's memory would hash
    the whole training frame on every lookup and pickle the fitted torch sampler and DJVAE
    to disk; a cache hit would hide the prefix's fit seconds that the report charges to
    every variant using it; and Table VI and Fig. 9 need the augmented training set itself.
    Every prefix step is seeded with the seed itself (not :func:`set_random_states`'s
    per-step seeds): the reported numbers depend on it.
    """

    def __init__(self, data, seed, device, verbose, quick):
        self.data, self.seed, self.device, self.verbose, self.quick = (
            data,
            seed,
            device,
            verbose,
            quick,
        )
        self.strategy = _sampling_strategy(data)
        self.augmented: dict = {}
        self.fused: dict = {}

    def augment(self, aug):
        """``(X, y, sampler, seconds)`` of the training set over-sampled by ``aug``."""
        if aug not in self.augmented:
            start = time.perf_counter()
            if aug is None:
                out = (self.data.X_train, self.data.y_train, None)
            else:
                sampler = _make_sampler(aug, self.strategy, self.seed, self.device, self.verbose)
                X, y = sampler.fit_resample(self.data.X_train, self.data.y_train)
                out = (X, y, sampler)
            self.augmented[aug] = (*out, time.perf_counter() - start)
        return self.augmented[aug]

    def fuse(self, aug, fuse):
        """``(X_train, y_train, X_valid, X_test, djvae, seconds)`` after ``aug`` [and DJVAE]."""
        X, y, _, aug_time = self.augment(aug)
        if not fuse:
            return X, y, self.data.X_valid, self.data.X_test, None, aug_time
        if aug not in self.fused:
            from ..fusion import DJVAE

            start = time.perf_counter()
            vae = DJVAE(device=self.device, random_state=self.seed, verbose=self.verbose)
            if self.quick:
                vae.set_params(max_epochs=5)
            Xf = vae.fit_transform(X)
            out = (Xf, vae.transform(self.data.X_valid), vae.transform(self.data.X_test), vae)
            self.fused[aug] = (*out, time.perf_counter() - start)
        Xf, Xv, Xt, vae, fuse_time = self.fused[aug]
        return Xf, y, Xv, Xt, vae, aug_time + fuse_time


def _fit_variant(variant: Variant, prefixes: _Prefixes, device, verbose, quick, max_epochs):
    """Fit one variant; return (test predictions, fit seconds, fitted parts)."""
    from ..classifier import CBERLClassifier

    data = prefixes.data
    if variant.kind in ("lr", "mlp"):
        start = time.perf_counter()
        model = fit_utterance_baseline(variant.kind, data, prefixes.seed)
        return model.predict(utterance_features(data.X_test)), time.perf_counter() - start, {}
    X, y, X_valid, X_test, vae, prefix_time = prefixes.fuse(variant.aug, variant.fuse)
    clf = CBERLClassifier(device=device, random_state=prefixes.seed, verbose=verbose)
    clf.set_params(**dict(variant.clf))
    if max_epochs is not None:
        clf.set_params(max_epochs=max_epochs)
    start = time.perf_counter()
    fit_with_validation(clf, X, y, X_valid, data.y_valid)
    fit_time = prefix_time + time.perf_counter() - start
    return clf.predict(X_test), fit_time, {"clf": clf, "vae": vae, "X_test": X_test}
