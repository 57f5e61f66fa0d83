"""SAMME weighting and voting of the weak heads (the AdaBoost stage)."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.ensemble import AdaBoostClassifier

from sklearn_cberl.nn.mgnn import WeakHeads, focal_loss, samme_alpha, samme_decision, samme_weights


def test_hand_computed_three_class_case():
    # 4 utterances, K = 3. Head 0 misses utterance 0, head 1 misses utterance 1.
    miss = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    weights, errors, alphas = samme_weights(miss, None, n_classes=3)
    # Head 0: uniform weights, err = 1/4, alpha = log(3) + log(2) = log 6.
    torch.testing.assert_close(weights[:, 0], torch.full((4,), 0.25))
    assert float(errors[0]) == pytest.approx(0.25)
    assert float(alphas[0]) == pytest.approx(math.log(6))
    # Head 1: the missed utterance is up-weighted by exp(alpha) = 6 -> (6, 1, 1, 1) / 9.
    torch.testing.assert_close(weights[:, 1], torch.tensor([6.0, 1, 1, 1]) / 9)
    assert float(errors[1]) == pytest.approx(1 / 9)
    assert float(alphas[1]) == pytest.approx(math.log(8) + math.log(2))  # log 16
    # Head 2: utterance 1 up-weighted by 16 -> (6, 16, 1, 1) / 24.
    torch.testing.assert_close(weights[:, 2], torch.tensor([6.0, 16, 1, 1]) / 24)
    assert float(errors[2]) == pytest.approx(6 / 24)


def test_sample_weights_start_the_first_round():
    miss = torch.tensor([[1], [0], [0]], dtype=torch.bool)
    weights, errors, _ = samme_weights(miss, torch.tensor([2.0, 1.0, 1.0]), n_classes=2)
    torch.testing.assert_close(weights[:, 0], torch.tensor([0.5, 0.25, 0.25]))
    assert float(errors[0]) == pytest.approx(0.5)


def test_alpha_has_the_multiclass_term_and_is_zero_at_chance():
    # Binary: the classic AdaBoost alpha.
    assert float(samme_alpha(torch.tensor(0.2), 2)) == pytest.approx(math.log(4))
    # K = 7: an error of 0.6 is still better than chance (1 - 1/7) and gets a vote.
    assert float(samme_alpha(torch.tensor(0.6), 7)) == pytest.approx(
        math.log(0.4 / 0.6) + math.log(6)
    )
    assert float(samme_alpha(torch.tensor(6 / 7), 7)) == pytest.approx(0.0, abs=1e-6)
    assert float(samme_alpha(torch.tensor(0.95), 7)) == 0.0
    # A perfect head gets a large but finite vote; learning_rate shrinks it.
    assert math.isfinite(float(samme_alpha(torch.tensor(0.0), 3)))
    assert float(samme_alpha(torch.tensor(0.2), 2, learning_rate=0.5)) == pytest.approx(
        0.5 * math.log(4)
    )


def test_matches_scikit_learn_adaboost_samme():
    X, y = load_iris(return_X_y=True)
    ada = AdaBoostClassifier(n_estimators=4, random_state=0).fit(X, y)
    assert len(ada.estimators_) == 4
    miss = np.stack([est.predict(X) != y for est in ada.estimators_], axis=1)
    _, errors, alphas = samme_weights(torch.from_numpy(miss), None, n_classes=3)
    np.testing.assert_allclose(errors.numpy(), ada.estimator_errors_, rtol=1e-5)
    np.testing.assert_allclose(alphas.numpy(), ada.estimator_weights_, rtol=1e-5)


def test_hard_vote_is_the_alpha_weighted_majority():
    # 3 heads, 1 utterance, K = 3: heads vote class 0, 1, 1 with alphas 3, 1, 1.
    logits = torch.tensor([[[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]]])
    decision = samme_decision(logits, torch.tensor([3.0, 1.0, 1.0]), voting="hard")
    assert int(decision.argmax()) == 0
    decision = samme_decision(logits, torch.tensor([1.0, 1.0, 1.0]), voting="hard")
    assert int(decision.argmax()) == 1
    # Symmetric coding: each vote sums to zero, so the decision does too.
    assert float(decision.sum()) == pytest.approx(0.0, abs=1e-6)


def test_soft_vote_single_head_gives_its_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 4, generator=g)
    decision = samme_decision(logits, torch.tensor([2.5]))
    proba = torch.softmax(decision / (logits.shape[-1] - 1), -1)  # CBERLClassifier.predict_proba
    torch.testing.assert_close(proba, torch.softmax(logits[:, 0], -1))
    # Zero alphas fall back to a uniform vote rather than dividing by zero.
    two = torch.randn(5, 2, 4, generator=g)
    d = samme_decision(two, torch.zeros(2))
    torch.testing.assert_close(d, samme_decision(two, torch.ones(2)))
    with pytest.raises(ValueError, match="voting"):
        samme_decision(two, torch.ones(2), voting="median")


def _train_heads(boost: bool, X, y, n_classes=3, steps=300):
    torch.manual_seed(0)
    heads = WeakHeads(X.shape[1], 4, n_classes, n_heads=3, dropout=0.0)
    opt = torch.optim.Adam(heads.parameters(), lr=0.05)
    for _ in range(steps):
        logits = heads(X)
        weight = None
        if boost:
            miss = logits.detach().argmax(-1) != y.unsqueeze(-1)
            weight, _, _ = samme_weights(miss, None, n_classes)
        loss = focal_loss(logits, y, gamma=0.0, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return heads(X).argmax(-1)


def test_boosting_weights_change_what_the_heads_learn():
    # Imbalanced 3-class problem on fixed features: without boosting the three heads learn
    # the same function; with SAMME weights the later heads concentrate on head 0's mistakes.
    g = torch.Generator().manual_seed(0)
    n = 600
    y = torch.multinomial(torch.tensor([0.8, 0.15, 0.05]), n, replacement=True, generator=g)
    centers = torch.tensor([[0.0, 0.0], [1.2, 0.0], [0.0, 1.2]])
    X = centers[y] + torch.randn(n, 2, generator=g)
    plain = _train_heads(False, X, y)
    boosted = _train_heads(True, X, y)
    missed = boosted[:, 0] != y  # head 0's mistakes (head 0's weights are uniform in both)
    recall_on_missed = (boosted[missed, 2] == y[missed]).float().mean()
    plain_missed = plain[:, 0] != y
    plain_recall_on_missed = (plain[plain_missed, 2] == y[plain_missed]).float().mean()
    assert recall_on_missed > plain_recall_on_missed + 0.2
    # Without boosting the heads agree almost everywhere; with it they do not.
    assert (plain[:, 2] == plain[:, 0]).float().mean() > 0.9
    assert (boosted[:, 2] == boosted[:, 0]).float().mean() < 0.8
    # And the minority classes get predicted by the later heads.
    assert (boosted[:, 2] != 0).sum() > (plain[:, 2] != 0).sum()


# --------------------------------------------------------------------------- in the classifier
def test_samme_callback_sets_each_epochs_votes_from_its_errors():
    """The ``samme_boosting`` callback of the classifier's net: every epoch's votes are
    ``samme_alpha`` of that epoch's accumulated head errors, the kept votes are those of the
    kept epoch, and no accumulator (a device tensor) outlives fit."""
    from tiny import CLF, conversations

    from sklearn_cberl import CBERLClassifier

    X, y = conversations()
    clf = CBERLClassifier(random_state=0, **CLF).fit(X, y)
    history, n_classes = clf.net_.history, len(clf.classes_)
    for row in history:
        expected = samme_alpha(torch.tensor(row["samme_error"]), n_classes)
        np.testing.assert_allclose(row["samme_alpha"], expected.numpy(), rtol=1e-6)
    kept = history[clf.best_epoch_ - 1]
    np.testing.assert_allclose(clf.estimator_weights_, kept["samme_alpha"], rtol=1e-6)
    np.testing.assert_array_equal(clf.estimator_errors_, kept["samme_error"])
    samme = dict(clf.net_.callbacks_)["samme_boosting"]
    assert samme.error_sum_ == 0.0 and samme.weight_sum_ == 0.0


def test_no_samme_rounds_for_the_mlp_head():
    from tiny import CLF, conversations

    from sklearn_cberl import CBERLClassifier

    X, y = conversations()
    clf = CBERLClassifier(random_state=0, ensemble="mlp", **CLF).fit(X, y)
    assert all("samme_alpha" not in row for row in clf.net_.history)
    assert clf.estimator_weights_.tolist() == [1.0] and np.isnan(clf.estimator_errors_).all()
