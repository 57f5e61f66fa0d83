"""Torch code: modules, losses, DJVAE's loops and dialogue batching (no estimator imports here).

``gan``: EmoGAN generators, discriminators, emotion classifier and the Eq. 1-7 losses.
``vae``: the DJVAE encoders/decoder and the Eq. 12 ELBO terms.
``vae_loops``: DJVAE's training and chunked inference loops over the ``vae`` modules.
``data``: dialogue batching for the graph network (dialogue-major layout, one dialogue per
dataset item, PyG-style node batches).
``graph``: vectorised conversation-graph building and the Eq. 15-17 message passing.
``mgnn``: the masked multi-task graph network (Eq. 13-18).
``losses``: focal loss (Eq. 19) and the total classification loss (Eq. 20).
``boosting``: SAMME weighting of the weak classifier heads.
"""
