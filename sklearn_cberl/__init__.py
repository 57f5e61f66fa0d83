"""sklearn-cberl: CBERL for imbalanced multimodal emotion recognition in conversations."""

__version__ = "0.1.0"
