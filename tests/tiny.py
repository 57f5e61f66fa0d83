"""Unit-test sizes: small conversation data, and the three estimators and the pipeline at
one to three epochs and 8 units."""

# sampling_strategy="auto": the default (0.1) adds nothing to these small class counts, and
# the unit tests need the GAN trained.
GAN = dict(
    max_epochs=2,
    classifier_max_epochs=2,
    hidden_size=8,
    latent_size=2,
    sampling_strategy="auto",
    device="cpu",
)
VAE = dict(n_components=3, hidden_layer_sizes=(8,), max_epochs=3, device="cpu")
CLF = dict(hidden_size=8, n_estimators=2, max_epochs=3, device="cpu", attention_hidden=(8,))
PIPE = dict(
    fusion="separate",  # the small fuse__ parameters below need the DJVAE step
    aug__sampling_strategy="auto",
    aug__max_epochs=1,
    aug__classifier_max_epochs=1,
    aug__hidden_size=8,
    fuse__max_epochs=2,
    fuse__n_components=3,
    fuse__hidden_layer_sizes=(8,),
    clf__max_epochs=2,
    clf__hidden_size=8,
    clf__n_estimators=2,
)


def conversations(n_dialogues=12, random_state=0):
    """Conversations of 3 classes (60 / 25 / 15 %) and 2 narrow modalities (text 4, audio 3);
    12 dialogues give 119 / 27 / 16 utterances, enough for SMOTE."""
    from sklearn_cberl.datasets import make_conversations

    return make_conversations(
        n_dialogues=n_dialogues,
        n_classes=3,
        class_weights=(0.6, 0.25, 0.15),
        modalities={"text": 4, "audio": 3},
        random_state=random_state,
    )
