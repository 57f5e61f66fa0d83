"""The README's usage example runs (with small data and few epochs)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

# Shrink the example to unit-test size; everything else runs as written.
SHRINK = {
    "n_dialogues=200": "n_dialogues=30",
    '"dlg0130"': '"dlg0020"',
    '"dlg0149"': '"dlg0024"',
    "make_cberl_pipeline(random_state=0, verbose=1)": "make_cberl_pipeline(random_state=0, "
    "verbose=1, device='cpu', aug__sampling_strategy='auto', aug__max_epochs=2, "
    "aug__classifier_max_epochs=2, clf__max_epochs=2, clf__n_estimators=2, "
    "clf__fusion__max_epochs=2, clf__fusion__n_components=8)",
    "CBERLClassifier(random_state=0)": "CBERLClassifier(max_epochs=2, "
    "n_estimators=2, random_state=0, device='cpu')",
}


def test_readme_usage_example_runs_and_shows_progress(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0]
    for old, new in SHRINK.items():
        assert old in code, f"README example changed: {old!r} not found"
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    out, err = capsys.readouterr()
    assert "WAF1" in out
    search = namespace["search"]
    assert len(search.cv_results_["params"]) == 2
    assert hasattr(search.best_estimator_, "predict")
    # Progress during every slow step (issue 25): a line per epoch of the sampler's GAN, of
    # the pretrained fusion and of the classifier, each step's time, each search fit.
    printed = out + err
    for step in ("aug", "clf"):
        assert re.search(rf"\[Pipeline\].*Processing {step}", printed), step
    for name in ("EmoGAN", "DJVAE", "CBERLClassifier"):
        assert re.search(rf"{name}.*epoch", printed, flags=re.I), name
    assert printed.count("[CV] END") == 4


def test_readme_baseline_number_is_what_the_example_prints(capsys):
    """The cheap part of the documented output, re-run at full size: the per-utterance
    baseline's WAF1 quoted under the example is what the example prints (issue 25)."""
    text = README.read_text()
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    exec(compile(code.split("# EmoGANSampler ->")[0], str(README), "exec"), {})
    printed = re.search(r"per-utterance LR: WAF1 ([\d.]+)%", capsys.readouterr().out).group(1)
    quoted = re.search(r"per-utterance logistic regression WAF1 ([\d.]+) %", text).group(1)
    assert printed == quoted
