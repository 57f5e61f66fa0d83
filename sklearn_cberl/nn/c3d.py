"""The visual front-end's 3D-CNN (paper Sec. III). :class:`~sklearn_cberl.features.VideoC3D`
trains it through skorch (its ``C3DTrainingNet``: cross-entropy on the utterance labels)."""

from __future__ import annotations

from torch import nn

__all__ = ["C3DNet"]


class C3DNet(nn.Module):
    """Three blocks of (Conv3d-ReLU-Conv3d-ReLU-MaxPool3d), then an MLP (paper Sec. III).

    Input ``(batch, 3, frames, height, width)``; ``features`` returns the hidden layer.
    """

    def __init__(self, channels=(32, 64, 128), hidden=512, n_classes=2, dropout=0.5):
        super().__init__()
        blocks, c_in = [], 3
        for c in channels:
            blocks += [
                nn.Conv3d(c_in, c, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv3d(c, c, kernel_size=3, padding=1),
                nn.ReLU(),
                # ceil_mode: tiny clips (2-frame remainders) still pool instead of vanishing.
                nn.MaxPool3d(kernel_size=2, ceil_mode=True),
            ]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        # Global average pooling makes the MLP independent of the clip size.
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(c_in, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def features(self, x):
        return self.hidden(self.pool(self.conv(x)))

    def forward(self, x):
        return self.head(self.features(x))
