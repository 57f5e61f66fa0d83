"""Torch modules and loss functions (no estimator imports here).

``gan``: EmoGAN generators, discriminators, emotion classifier and the Eq. 1-7 losses.
``vae``: the DJVAE encoders/decoder and the Eq. 12 ELBO terms.
``graph``: vectorised conversation-graph building and the Eq. 15-17 message passing.
``mgnn``: the masked multi-task graph network (Eq. 13-18).
``losses``: focal loss (Eq. 19) and the total classification loss (Eq. 20).
``boosting``: SAMME weighting of the weak classifier heads.
"""
