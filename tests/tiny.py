"""Unit-test sizes of the three estimators and the pipeline (one to three epochs, 8 units)."""

GAN = dict(n_epochs=2, classifier_epochs=2, hidden_size=8, latent_size=2, device="cpu")
VAE = dict(n_components=3, hidden_sizes=(8,), n_epochs=3, device="cpu")
CLF = dict(hidden_size=8, n_estimators=2, max_epochs=3, device="cpu", attention_hidden=(8,))
PIPE = dict(
    aug__n_epochs=1,
    aug__classifier_epochs=1,
    aug__hidden_size=8,
    fuse__n_epochs=2,
    fuse__n_components=3,
    fuse__hidden_sizes=(8,),
    clf__max_epochs=2,
    clf__hidden_size=8,
    clf__n_estimators=2,
)
