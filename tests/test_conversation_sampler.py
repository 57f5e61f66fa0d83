import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler

from sklearn_cberl.conversation import METADATA_COLUMNS, check_conversations
from sklearn_cberl.over_sampling import ConversationSampler


@pytest.mark.parametrize(
    "sampler", [SMOTE(k_neighbors=3, random_state=0), RandomOverSampler(random_state=0)]
)
def test_features_resampled_metadata_carried(small_conversations, sampler):
    X, y = small_conversations
    before = X.copy()
    wrapper = ConversationSampler(sampler)
    X_res, y_res = wrapper.fit_resample(X, y)
    pd.testing.assert_frame_equal(X, before)  # input untouched
    n = len(X)
    assert list(X_res.columns) == [*X.columns, "synthetic"] and len(X_res) == len(y_res) > n
    np.testing.assert_array_equal(X_res["synthetic"], wrapper.synthetic_mask_)
    # real rows first and unchanged (turn becomes float to hold fractional synthetic turns)
    pd.testing.assert_frame_equal(
        X_res.iloc[:n][X.columns].reset_index(drop=True),
        X.reset_index(drop=True),
        check_dtype=False,
    )
    assert X_res["turn"].dtype == np.float64
    assert y_res.value_counts().nunique() == 1  # "auto": every class up to the majority
    src = wrapper.sample_indices_[n:]
    assert wrapper.synthetic_mask_.sum() == len(src)
    # synthetic rows sit in their source's dialogue, same speaker, strictly after the source
    np.testing.assert_array_equal(X_res["dialogue_id"].iloc[n:], X["dialogue_id"].iloc[src])
    np.testing.assert_array_equal(X_res["speaker"].iloc[n:], X["speaker"].iloc[src])
    assert (X_res["turn"].iloc[n:].to_numpy() > X["turn"].iloc[src].to_numpy()).all()
    np.testing.assert_array_equal(y_res.iloc[n:].to_numpy(), y.iloc[src].to_numpy())
    check_conversations(X_res)  # still a valid conversation frame (unique turns)


def test_standalone_and_plain_arrays(small_conversations):
    X, y = small_conversations
    X_res, _ = ConversationSampler(SMOTE(random_state=0), placement="standalone").fit_resample(X, y)
    new_ids = set(X_res["dialogue_id"].iloc[len(X) :])
    assert new_ids.isdisjoint(set(X["dialogue_id"])) and len(new_ids) == len(X_res) - len(X)
    F = X.drop(columns=list(METADATA_COLUMNS)).to_numpy()
    F_res, y_res = ConversationSampler(SMOTE(random_state=0)).fit_resample(F, y.to_numpy())
    assert F_res.shape[1] == F.shape[1] and len(F_res) == len(y_res) > len(F)


def test_bad_sampler_and_placement(small_conversations):
    X, y = small_conversations
    # sklearn's parameter validation names the parameter and what it expects
    with pytest.raises(TypeError, match="'sampler' parameter .* implementing 'fit_resample'"):
        ConversationSampler().fit_resample(X, y)
    with pytest.raises(ValueError, match="'placement' parameter .* Got 'after'"):
        ConversationSampler(SMOTE(), placement="after").fit_resample(X, y)
