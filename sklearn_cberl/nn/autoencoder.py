"""The audio front-end's MLP auto-encoder (paper Sec. III: a 100-d bottleneck over the
openSMILE functionals). :class:`~sklearn_cberl.features.AudioFeatures` trains it through
skorch (its ``AutoEncoderNet``)."""

from __future__ import annotations

from torch import nn

__all__ = ["AutoEncoder"]


class AutoEncoder(nn.Module):
    """Symmetric MLP auto-encoder; the bottleneck is the reduced audio feature.

    ``in -> hidden... -> n_components -> ...hidden -> in``, ReLU between layers, linear
    bottleneck and output (the input is z-scored, so unbounded).
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_components: int, dropout: float):
        super().__init__()
        sizes = [n_in, *hidden]
        enc = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder = nn.Sequential(*enc, nn.Linear(sizes[-1], n_components))
        back = [n_components, *reversed(hidden)]
        dec = []
        for a, b in zip(back[:-1], back[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], n_in))

    def forward(self, x):
        z = self.encoder(x)
        return z, self.decoder(z)
