"""The README's usage example runs (with small data and few epochs)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

# Shrink the example to unit-test size; everything else runs as written.
SHRINK = {
    "n_dialogues=200": "n_dialogues=24",
    '"dlg0150"': '"dlg0018"',
    "EmoGANSampler()": "EmoGANSampler(max_epochs=2, classifier_max_epochs=2, random_state=0)",
    "DJVAE()": "DJVAE(n_components=8, max_epochs=2, random_state=0)",
    "CBERLClassifier()": "CBERLClassifier(max_epochs=2, n_estimators=2, random_state=0, "
    "device='cpu', verbose=0)",
}


def test_readme_usage_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0]
    for old, new in SHRINK.items():
        assert old in code, f"README example changed: {old!r} not found"
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert "WAF1" in capsys.readouterr().out
    search = namespace["search"]
    assert len(search.cv_results_["params"]) == 2
    assert hasattr(search.best_estimator_, "predict")
