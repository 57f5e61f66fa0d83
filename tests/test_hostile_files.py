"""Hostile model files: no payload runs, no object outside the allow list is built, and every
case ends in a ValueError (``persistence.load``) or exit status 2 (the ``cberl`` command).

Forged files recompute their digests (``forging.forge``), as a deliberate forger would: what
stops them is the check of each claim. Damage, forged dtypes and shapes, links and
interrupted writes are in ``test_integrity.py``."""

import os
import pickle
import time

import joblib
import pytest
import torch
from forging import find, forge
from tiny import PIPE, conversations

from sklearn_cberl import make_cberl_pipeline, persistence
from sklearn_cberl.cli import main


class Payload:
    """Unpickling this object runs ``os.system``: it writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    X, y = conversations()
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **PIPE).fit(X, y)
    path = persistence.save(pipe, root / "model.cberl")
    table = root / "data.csv"
    X.assign(label=y).to_csv(table, index=False)
    return root, path, table


def estimator_entry(document, name):
    return find(document, lambda d: d.get("__estimator__", "").endswith(name))


def attrs_of(entry):
    return entry["attrs"]["__dict__"]


def assert_refused(path, marker=None, match="sklearn-cberl|sklearn_cberl|file|names"):
    with pytest.raises(ValueError, match=match):
        persistence.load(path)
    if marker is not None:
        assert not os.path.exists(marker)


# ----------------------------------------------------------------------------- pickles
@pytest.mark.parametrize("writer", ["pickle", "joblib", "torch.save"])
def test_code_carrying_files_never_run(saved, tmp_path, writer):
    root, _, table = saved
    marker = tmp_path / "pwned"
    path = tmp_path / "model.cberl"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(Payload(marker)))
    elif writer == "joblib":
        joblib.dump(Payload(marker), path)
    else:
        torch.save({"format": "sklearn-cberl", "x": Payload(marker)}, path)
    assert_refused(path, marker)
    for command in ("predict", "evaluate"):
        code = main([command, str(table), "-m", str(path), "-q"])
        assert code == 2 and not marker.exists()


def test_cli_says_how_to_opt_in_to_a_trusted_pickle(saved, tmp_path, capsys):
    root, _, table = saved
    X, y = conversations()
    pipe = make_cberl_pipeline(random_state=0, device="cpu", augment=False, **{
        k: v for k, v in PIPE.items() if not k.startswith("aug")
    }).fit(X, y)  # fmt: skip
    path = tmp_path / "model.joblib"
    joblib.dump(pipe, path)
    assert main(["predict", str(table), "-m", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and "Traceback" not in err and str(path) in err
    out = tmp_path / "pred.csv"
    assert (
        main(["predict", str(table), "-m", str(path), "-o", str(out), "--trust-pickle", "-q"]) == 0
    )
    assert out.is_file()


# ----------------------------------------------------------------------------- forged files
NOT_ALLOWED = [
    "sklearn_cberl.nn.mgnn.MGNN",
    "torch.optim.adam.Adam",
    "torch.utils.data.dataloader.DataLoader",
    "skorch.dataset.Dataset",
    "sklearn_cberl.nn.mgnn.CBERLLoss",
    "os.system",
    "builtins.eval",
]


@pytest.mark.parametrize(
    "kind, name",
    [
        (kind, name)
        for kind in ("__estimator__", "__object__", "__callable__")
        for name in NOT_ALLOWED
        # the data loader class is a reference the classifier's net legitimately holds
        if not (kind == "__callable__" and name in persistence.SAFE_CALLABLES)
    ],
)
def test_only_allow_listed_classes_are_built(saved, tmp_path, name, kind):
    _, path, _ = saved

    def edit(document):
        entry = estimator_entry(document, "DJVAE")
        params = entry["params"]["__dict__"]
        if kind == "__estimator__":
            entry["__estimator__"] = name
        elif kind == "__object__":
            params.append(["beta", {"__object__": name, "init": {}}])
        else:
            params.append(["beta", {"__callable__": name}])

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="names")


def test_an_allowed_estimator_cannot_be_smuggled_in_as_a_plain_object(saved, tmp_path):
    _, path, _ = saved

    def edit(document):
        entry = estimator_entry(document, "DJVAE")
        entry["params"]["__dict__"].append(
            ["beta", {"__object__": "sklearn_cberl.classifier.CBERLClassifier", "init": {}}]
        )

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="names")


@pytest.mark.parametrize("attribute", ["__class__", "__dict__", "_private", "__reduce__"])
def test_dunder_and_private_attributes_are_refused(saved, tmp_path, attribute):
    _, path, _ = saved

    def edit(document):
        entry = estimator_entry(document, "DJVAE")
        target = {"__class__": {"__callable__": "sklearn_cberl.classifier.collate_dialogues"}}
        attrs_of(entry).append([attribute, target.get(attribute, 1)])

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="forbidden attribute")


@pytest.mark.parametrize(
    "where, key, value",
    [
        ("DJVAE", "n_components", 10**9),
        ("DJVAE", "block_sizes", [10**8, 10**8]),
        ("EmoGANSampler", "hidden_size", 10**9),
        ("CBERLClassifier", "module__n_features", 10**9),
        ("CBERLClassifier", "module__hidden_size", 10**8),
    ],
)
def test_sizes_in_the_file_are_checked_before_anything_is_allocated(
    saved, tmp_path, where, key, value
):
    _, path, _ = saved

    def edit(document):
        torch_part = estimator_entry(document, where)["torch"]
        if key.startswith("module__"):
            params = torch_part["params"]["__dict__"]
            for item in params:
                if item[0] == key:
                    item[1] = value
        else:
            torch_part[key] = value

    forged = forge(path, tmp_path / "forged.cberl", edit)
    start = time.perf_counter()
    assert_refused(forged, match="sizes")
    assert time.perf_counter() - start < 30  # refused on the meta device, nothing allocated


@pytest.mark.parametrize(
    "damage",
    ["truncated", "empty", "random bytes", "json garbage", "no json", "tensor not a tensor"],
)
def test_malformed_files_are_one_value_error(saved, tmp_path, damage):
    root, path, table = saved
    bad = tmp_path / "bad.cberl"
    data = path.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "random bytes":
        bad.write_bytes(os.urandom(4096))
    else:
        payload = torch.load(path, weights_only=True)
        if damage == "json garbage":
            payload["json"] = "{not json"
        elif damage == "no json":
            del payload["json"]
        else:
            payload["tensors"] = {"t0": 3}
        torch.save(payload, bad)
    assert_refused(bad)
    assert main(["predict", str(table), "-m", str(bad), "-q"]) == 2


def test_a_genuine_file_still_loads_and_predicts(saved):
    _, path, _ = saved
    X, _ = conversations()
    model = persistence.load(path)
    assert len(model.predict(X)) == len(X)


# ----------------------------------------------------------------- module configs (format 3)
def module_entry(document, estimator, module):
    """The stored module ``module`` (class name) of the first ``estimator`` entry."""
    table = estimator_entry(document, estimator)["torch"]
    return next(e for e in table.values() if e["module"].endswith(module))


@pytest.mark.parametrize(
    "estimator, module, key, value",
    [
        ("DJVAE", "DJVAEModule", "n_components", 10**9),
        ("DJVAE", "DJVAEModule", "block_sizes", [10**8, 10**8]),
        ("DJVAE", "DJVAEModule", "hidden_sizes", [10**9]),
        ("EmoGANSampler", "EmoGAN", "hidden_size", 10**9),
        ("EmoGANSampler", "EmoGAN", "widths", [10**9, 3]),
        ("EmoGANSampler", "EmotionClassifier", "n_features", 10**9),
        ("EmoGANSampler", "EmotionClassifier", "hidden_size", 10**9),
        ("EmoGANSampler", "EmotionClassifier", "n_classes", -1),
    ],
)
def test_forged_module_config_sizes_are_refused_before_allocation(
    saved, tmp_path, estimator, module, key, value
):
    _, path, _ = saved

    def edit(document):
        module_entry(document, estimator, module)["config"][key] = value

    start = time.perf_counter()
    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="sizes")
    assert time.perf_counter() - start < 30  # refused on the meta device, nothing allocated


@pytest.mark.parametrize(
    "module",
    [
        "sklearn_cberl.nn.mgnn.MGNN",
        "sklearn_cberl.fusion.DJVAE",
        "torch.nn.modules.linear.Linear",
        "os.system",
        ["sklearn_cberl.nn.vae.DJVAEModule"],
    ],
)
def test_module_entries_build_only_allow_listed_modules(saved, tmp_path, module):
    _, path, _ = saved

    def edit(document):
        module_entry(document, "DJVAE", "DJVAEModule")["module"] = module

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="names")


@pytest.mark.parametrize(
    "config_edit",
    [
        {"__class__": {"__callable__": "sklearn_cberl.classifier._net.collate_dialogues"}},
        {"_private": 1},
        {"fusion": {"__callable__": "sklearn_cberl.classifier._net.collate_dialogues"}},
        {"fusion": {"__estimator__": "sklearn_cberl.fusion.DJVAE"}},
        {"device": "cuda"},  # not a constructor argument
    ],
)
def test_module_configs_hold_only_plain_constructor_arguments(saved, tmp_path, config_edit):
    _, path, _ = saved

    def edit(document):
        module_entry(document, "DJVAE", "DJVAEModule")["config"].update(config_edit)

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="config|sizes")


@pytest.mark.parametrize(
    "ref",
    [
        {"__torch_module__": "m9", "path": ""},  # no such module
        {"__torch_module__": "m0", "path": "__class__"},
        {"__torch_module__": "m0", "path": "encoders.0.net.0.weight"},  # a tensor
        {"__torch_module__": "m0", "path": ["encoders"]},
    ],
)
def test_module_references_resolve_only_to_stored_modules(saved, tmp_path, ref):
    _, path, _ = saved

    def edit(document):
        attrs_of(estimator_entry(document, "DJVAE")).append(["extra_", ref])

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="dangling")


@pytest.mark.parametrize("field", ["state", "training", "frozen"])
def test_malformed_module_weights_and_flags_are_refused(saved, tmp_path, field):
    _, path, _ = saved

    def edit(document):
        entry = module_entry(document, "DJVAE", "DJVAEModule")
        entry[field] = {"state": {"decoder.x": "t99999"}, "training": ["no.such.module"]}.get(
            field, ["no.such.parameter"]
        )

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="malformed")


@pytest.mark.parametrize(
    "key, value",
    [
        ("iterator_valid__num_workers", 10000),  # would start processes at predict
        ("iterator_valid__worker_init_fn", {"__callable__": persistence.SAFE_CALLABLES[1]}),
        ("iterator_valid__multiprocessing_context", "fork"),
        ("compile", True),
        ("torch_load_kwargs", {"__dict__": [["weights_only", False]]}),
    ],
)  # fmt: skip
def test_net_parameters_that_change_how_inference_runs_are_refused(saved, tmp_path, key, value):
    _, path, _ = saved

    def edit(document):
        params = estimator_entry(document, "CBERLClassifier")["torch"]["params"]["__dict__"]
        params[:] = [p for p in params if p[0] != key] + [[key, value]]

    assert_refused(forge(path, tmp_path / "forged.cberl", edit), match="forbidden net parameters")
