"""Progress output: plain lines without escape codes off a terminal, history in percent, and a
warning when the epoch cap (not early stopping) ended training."""

import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning
from tiny import CLF, GAN, VAE

from sklearn_cberl import DJVAE, CBERLClassifier, EmoGANSampler
from sklearn_cberl.metrics import weighted_f1


@pytest.fixture(scope="module")
def data(tiny_conversations):
    return tiny_conversations


def assert_plain(text):
    assert "\r" not in text and "\x1b[" not in text  # no redraws, no colour codes
    assert text.strip(), "verbose fits print progress"


def test_sampler_and_fusion_progress_is_plain_lines_off_a_terminal(data, capsys):
    X, y = data
    EmoGANSampler(random_state=0, verbose=1, **GAN).fit_resample(X, y)
    DJVAE(random_state=0, verbose=1, **{**VAE, "max_epochs": 20}).fit(X)
    err = capsys.readouterr().err
    assert_plain(err)
    lines = err.strip().splitlines()
    # the sampler's networks each print skorch's epoch table under their own title
    for title in ("EmoGANSampler (EC_s)", "EmoGANSampler (filter judge 3/3)"):
        assert f"{title}: up to 2 epochs" in lines
    gan = lines.index("EmoGANSampler (GAN): up to 2 epochs")
    assert "train_discriminator" in lines[gan + 1]
    assert [line.split()[0] for line in lines[gan + 3 : gan + 5]] == ["1", "2"]
    assert "DJVAE: up to 20 epochs" in lines
    epochs = [line.split()[0] for line in lines if line.strip()[:1].isdigit()]
    assert epochs[-20:] == [str(e) for e in range(1, 21)]  # one line per DJVAE epoch


def test_classifier_epoch_table_has_no_colour_codes_off_a_terminal(data, capsys):
    X, y = data
    CBERLClassifier(random_state=0, verbose=2, **CLF).fit(X, y)
    out = capsys.readouterr()
    assert "valid_waf1" in out.err and out.out == ""  # progress on stderr, stdout untouched
    assert_plain(out.err)  # no colour codes, no per-batch bar either


def test_history_reports_validation_f1_in_percent(data):
    X, y = data
    clf = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 4})
    clf.fit(X, y, validation_data=(X, y))
    # The kept weights are the best epoch's: its recorded score is the model's WAF1 (%).
    best = clf.net_.history[clf.best_epoch_ - 1, "valid_waf1"]
    assert best == pytest.approx(100 * weighted_f1(y, clf.predict(X)), abs=1e-6)


def test_epoch_cap_warning_only_when_validation_was_still_improving(data):
    X, y = data
    # An ever-improving validation score: the cap, not early stopping, ends training.
    clf = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 3, "early_stopping": "loss"})
    cap = "epoch cap.*max_epochs=3.*raise max_epochs"
    with pytest.warns(ConvergenceWarning, match=cap) as caught:
        clf.fit(X, y, validation_data=(X, y))
    assert clf.best_epoch_ == clf.n_iter_ == 3
    # The warning points at the user's call, not into the package.
    assert [w.filename for w in caught if w.category is ConvergenceWarning] == [__file__]
    # Early stopping that ends training before the cap: no warning.
    stopped = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 40, "patience": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped.fit(X, y, validation_data=(X, y))
    assert stopped.n_iter_ < 40
