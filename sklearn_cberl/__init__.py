"""sklearn-cberl: CBERL for imbalanced multimodal emotion recognition in conversations.

The three estimators compose in an ``imblearn.pipeline.Pipeline`` (or :class:`CBERLPipeline`,
which also routes a validation set to the classifier):
:class:`EmoGANSampler` (data level, paper Eq. 1-7) -> :class:`DJVAE` (representation level,
Eq. 8-12) -> :class:`CBERLClassifier` (model and loss level, Eq. 13-20);
:func:`make_cberl_pipeline` builds it with the paper's hyper-parameters.

The names are imported on first use (PEP 562): ``import sklearn_cberl`` and the ``cberl``
command's ``--help`` stay fast, torch and PyG load only when an estimator is needed.
"""

from importlib import import_module

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "EmoGANSampler": "over_sampling",
    "ConversationSampler": "over_sampling",
    "SyntheticRowsWarning": "exceptions",
    "TrainingDivergedError": "exceptions",
    "DJVAE": "fusion",
    "CBERLClassifier": "classifier",
    "CBERLPipeline": "pipeline",
    "make_cberl_pipeline": "pipeline",
    "CBERLStageSearch": "selection",
    "AddPerClass": "strategies",
    "UpToRatio": "strategies",
    "PAPER_AUGMENTATION": "paper",
    "torch_threads": "_config",
    "set_config": "_config",
    "get_config": "_config",
    "config_context": "_config",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
