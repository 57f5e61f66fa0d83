import errno
import os

import pandas as pd
import pytest

from sklearn_cberl.cli import main

FAST = [
    "--param",
    "aug__max_epochs=2",
    "--param",
    "aug__classifier_max_epochs=2",
    "--fusion",
    "separate",
    "--param",
    "fuse__max_epochs=2",
    "--param",
    "fuse__n_components=4",
    "--param",
    "clf__max_epochs=2",
    "--param",
    "clf__hidden_size=8",
    "--param",
    "clf__validation_fraction=None",
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory, small_conversations):
    X, y = small_conversations
    root = tmp_path_factory.mktemp("cli")
    frame = X.assign(label=y)
    first = frame["dialogue_id"] < "dlg0030"
    frame[first].to_csv(root / "train.csv", index=False)
    frame[~first].to_parquet(root / "test.parquet", index=False)
    return root


@pytest.fixture(scope="module")
def model(tables):
    path = tables / "fixture_model.cberl"
    argv = ["fit", str(tables / "train.csv"), "-m", str(path), "--device", "cpu", "-q", *FAST]
    assert main(argv) == 0
    return path


def test_fit_predict_evaluate_round_trip(tables, capsys):
    model = tables / "model.cberl"
    assert (
        main(["fit", str(tables / "train.csv"), "-m", str(model), "--device", "cpu", "-q", *FAST])
        == 0
    )
    out = tables / "pred.csv"
    assert (
        main(["predict", str(tables / "test.parquet"), "-m", str(model), "-o", str(out), "-q"]) == 0
    )
    pred = pd.read_csv(out)
    test = pd.read_parquet(tables / "test.parquet")
    assert list(pred.columns) == ["dialogue_id", "speaker", "turn", "prediction"]
    assert (pred["dialogue_id"] == test["dialogue_id"]).all() and len(pred) == len(test)
    assert (
        main(
            [
                "evaluate",
                str(tables / "test.parquet"),
                "-m",
                str(model),
                "--output-dir",
                str(tables / "eval"),
                "-q",
            ]
        )
        == 0
    )
    assert "WAF1" in capsys.readouterr().out
    assert (tables / "eval" / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.csv", "-m", "m.cberl"], "missing.csv: no such file"),
        (["fit", "{train}", "-m", "m.cberl", "--label", "emotion"], "no label column 'emotion'"),
        (["fit", "{train}", "-m", "m.cberl", "--param", "nonsense"], "expected KEY=VALUE"),
        (["fit", "{train}", "-m", "m.cberl", "--param", "clf__bogus=1"], "--param"),
        (["predict", "{train}", "-m", "nope.cberl"], "no such model file"),
        (["fit", "{txt}", "-m", "m.cberl"], "unsupported file type '.txt'"),
        # a file that is not a model
        (["predict", "{train}", "-m", "{train}"], "is not a valid sklearn-cberl model file"),
        (["evaluate", "{train}", "-m", "{txt}"], "is not a valid sklearn-cberl model file"),
        # an output path below a regular file
        (["predict", "{train}", "-m", "{model}", "-o", "{train}/out.csv"], "is a file, not a"),
        (["fit", "{train}", "-m", "{txt}/m.cberl"], "{txt} is a file, not a directory"),
        # a parameter of a dropped step
        (
            ["fit", "{train}", "-m", "m.cberl", "--no-augment", "--param", "aug__max_epochs=2"],
            "the 'aug' step is dropped (--no-augment)",
        ),  # fmt: skip
        # inputs are never overwritten
        (["predict", "{train}", "-m", "{model}", "-o", "{train}"], "that is an input file"),
        (["fit", "{train}", "-m", "{train}"], "that is an input file"),
        # missing inputs of extract and reproduce
        (["extract", "missing_manifest.csv", "-o", "f.parquet"], "missing_manifest.csv"),
        (["reproduce", "--dataset", "iemocap", "--path", "missing.pkl"], "missing.pkl"),
    ],
)
def test_errors_are_one_line_messages(tables, model, capsys, argv, message):
    (tables / "data.txt").write_text("x")
    names = {"train": tables / "train.csv", "txt": tables / "data.txt", "model": model}
    argv = [a.format(**names) for a in argv]
    before = (tables / "train.csv").read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message.format(**names) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert (tables / "train.csv").read_bytes() == before


def test_evaluate_with_many_labels_the_model_never_saw(tables, model, tmp_path, capsys):
    frame = pd.read_parquet(tables / "test.parquet")
    frame["label"] = [f"unseen_{i}" for i in range(len(frame))]  # 100+ labels
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "eval"
    assert main(["evaluate", str(path), "-m", str(model), "--output-dir", str(out), "-q"]) == 0
    report = pd.read_csv(out / "report.csv")
    assert report["emotion"].str.startswith("unseen_").sum() == len(frame) > 100
    # The matrix covers the model's classes plus one row for labels it never saw: the
    # figure stays small (it had one row and column per label, 100+ of them).
    from PIL import Image

    width, height = Image.open(out / "confusion_matrix.png").size
    assert width < 2500 and height < 2500


def test_demo_runs_and_writes_png(tmp_path, capsys):
    assert (
        main(
            ["demo", "--n-dialogues", "24", "--device", "cpu", "--output-dir", str(tmp_path), "-q"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "CBERL pipeline" in out and out.count("WAF1") == 2
    assert (tmp_path / "demo_confusion_matrix.png").stat().st_size > 1000


def test_the_getting_started_sequence(tables, tmp_path, capsys):
    """docs/getting-started.md: fit with --label emotion, then predict and evaluate on a
    table that still has the emotion column and lists its columns in another order."""
    train = pd.read_csv(tables / "train.csv").rename(columns={"label": "emotion"})
    test = pd.read_parquet(tables / "test.parquet").rename(columns={"label": "emotion"})
    train.to_csv(tmp_path / "train.csv", index=False)
    shuffled = test[list(reversed(test.columns))].assign(notes="free text")  # + an extra column
    shuffled.to_csv(tmp_path / "test.csv", index=False)
    model = tmp_path / "model.cberl"
    fit = ["fit", str(tmp_path / "train.csv"), "-m", str(model), "--label", "emotion"]
    assert main([*fit, "--device", "cpu", "-q", *FAST]) == 0
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(tmp_path / "test.csv"), "-m", str(model), "-o", str(out)]) == 0
    pred = pd.read_csv(out)
    assert len(pred) == len(test) and (pred["dialogue_id"] == shuffled["dialogue_id"]).all()
    # same predictions as for the table in the training column order
    test.drop(columns="emotion").to_csv(tmp_path / "ordered.csv", index=False)
    again = tmp_path / "again.csv"
    assert main(["predict", str(tmp_path / "ordered.csv"), "-m", str(model), "-o", str(again)]) == 0
    assert (pd.read_csv(again)["prediction"] == pred["prediction"]).all()
    evaluate = ["evaluate", str(tmp_path / "test.csv"), "-m", str(model)]
    assert main([*evaluate, "--output-dir", str(tmp_path / "eval")]) == 0
    assert "WAF1" in capsys.readouterr().out
    # a missing feature column is named, with the close match the user probably meant
    test.rename(columns={"text_0": "text0"}).to_csv(tmp_path / "broken.csv", index=False)
    assert main(["predict", str(tmp_path / "broken.csv"), "-m", str(model)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) ['text_0']" in err and "did you mean 'text0'" in err


# ----------------------------------------------------------------------------- integrity
QUICK = ["--no-augment", "--device", "cpu", "--fusion", "separate", "--param",
         "fuse__max_epochs=1", "--param", "clf__max_epochs=1", "--param",
         "clf__validation_fraction=None", "-q"]  # fmt: skip
# QUICK[:-1]: the same without -q, to see the log lines


@pytest.fixture(scope="module")
def traps(tmp_path_factory, tiny_conversations):
    """A CSV whose cells pandas' type inference would mangle: zero-padded dialogue ids,
    speakers named NA and None, classes named None and NA; and a model fitted on it."""
    X, y = tiny_conversations
    frame = X.assign(emotion=y.replace({"emotion_0": "None", "emotion_1": "NA"}))
    frame["dialogue_id"] = frame["dialogue_id"].str.replace("dlg", "00")  # "000012"
    frame["speaker"] = frame["speaker"].where(frame.index % 3 > 0, "NA")
    frame.loc[frame.index % 3 == 1, "speaker"] = "None"
    frame["turn"] = frame["turn"].astype(str).str.zfill(3)  # "007": numeric, spelt with zeros
    root = tmp_path_factory.mktemp("traps")
    frame.to_csv(root / "data.csv", index=False)
    model = root / "model.cberl"
    assert main(["fit", str(root / "data.csv"), "-m", str(model), *QUICK]) == 0
    return root, frame, model


def run(argv, capsys):
    """Exit status and the stderr of one ``cberl`` call."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_csv_cells_are_read_and_written_verbatim(traps, tmp_path, capsys):
    root, frame, model = traps
    out = tmp_path / "pred.csv"
    assert main(["predict", str(root / "data.csv"), "-m", str(model), "-o", str(out), "-q"]) == 0
    pred = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert pred["dialogue_id"].tolist() == frame["dialogue_id"].tolist()  # "000012", not 12
    assert pred["speaker"].tolist() == frame["speaker"].tolist()  # "NA" and "None" as named
    assert pred["turn"].tolist() == frame["turn"].tolist()  # "007" as the input spells it
    assert set(pred["prediction"]) <= {"None", "NA", "emotion_2"}
    assert persistence_classes(model) == ["NA", "None", "emotion_2"]  # classes, not NaN
    code = main(["evaluate", str(root / "data.csv"), "-m", str(model), "--output-dir",
                 str(tmp_path / "eval"), "-q"])  # fmt: skip
    assert code == 0
    report = pd.read_csv(tmp_path / "eval" / "report.csv", keep_default_na=False)
    assert {"None", "NA"} <= set(report["emotion"])


def test_only_an_empty_feature_cell_is_missing(traps, tmp_path, capsys):
    root, frame, model = traps
    text = (root / "data.csv").read_text().splitlines()
    header = text[0].split(",")
    for token, message in [("", "contains NaN"), ("NA", "dtype")]:
        cells = text[1].split(",")
        cells[header.index("text_1")] = token
        (tmp_path / "x.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
        code, err = run(["predict", tmp_path / "x.csv", "-m", model], capsys)
        assert code == 2 and "'text_1'" in err and message in err, err


def persistence_classes(path):
    from sklearn_cberl.persistence import load

    return [str(c) for c in load(path).classes_]


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_empty_label_cells_are_named_by_line(traps, tmp_path, capsys, command):
    root, frame, model = traps
    holes = frame.copy()
    holes.loc[[3, 7], "emotion"] = ""
    holes.to_csv(tmp_path / "holes.csv", index=False)
    argv = [command, tmp_path / "holes.csv", "-m"]
    argv += [tmp_path / "m.cberl", *QUICK] if command == "fit" else [model, "-q"]
    code, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "2 missing (empty) label(s) in column 'emotion' at line(s) 5, 9" in err


def test_a_missing_label_column_names_the_likely_ones(tmp_path, capsys):
    """The issue's case: 716 columns, label 'emotion'; the message used to list the first 30
    columns only. Without --label, fit takes the only candidate and says so."""
    from sklearn_cberl.datasets import make_conversations

    X, y = make_conversations(n_dialogues=3, random_state=0)
    X.assign(emotion=y).to_csv(tmp_path / "train.csv", index=False)
    code, err = run(["fit", tmp_path / "train.csv", "-m", tmp_path / "m.cberl", "--label",
                     "label"], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no label column 'label'; columns that could hold the labels: 'emotion'." in err
    assert "text_0" not in err
    X.assign(emotion=y, note="x").to_csv(tmp_path / "two.csv", index=False)
    code, err = run(["fit", tmp_path / "two.csv", "-m", tmp_path / "m.cberl"], capsys)
    assert code == 2 and "'emotion', 'note'" in err  # two candidates: no guess


def test_fit_guesses_the_only_label_column_and_evaluate_names_the_remembered_one(
    traps, tmp_path, capsys
):
    root, frame, model = traps
    code, err = run(["fit", root / "data.csv", "-m", tmp_path / "m.cberl", *QUICK[:-1]], capsys)
    assert code == 0 and "using 'emotion'" in err and "as the label" in err
    frame.rename(columns={"emotion": "mood"}).to_csv(tmp_path / "mood.csv", index=False)
    code, err = run(["evaluate", tmp_path / "mood.csv", "-m", model, "-q"], capsys)
    assert code == 2
    assert "no label column 'emotion' (the column the model was fitted with)" in err
    assert "could hold the labels: 'mood'" in err


def test_predict_and_evaluate_take_the_model_columns_in_any_order(traps, tmp_path, capsys):
    """With --no-augment the pipeline's first step is "passthrough": the feature names come
    from the next step (a reordered table used to fail with scikit-learn's "The feature
    names should match those that were passed during fit")."""
    root, frame, model = traps
    shuffled = frame[list(reversed(frame.columns))]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    outs = []
    for name in ("data.csv", "shuffled.csv"):
        source = root / name if name == "data.csv" else tmp_path / name
        out = tmp_path / f"pred_{name}"
        assert main(["predict", str(source), "-m", str(model), "-o", str(out), "-q"]) == 0
        outs.append(pd.read_csv(out, dtype=str)["prediction"])
    pd.testing.assert_series_equal(outs[0], outs[1])
    code, err = run(["evaluate", tmp_path / "shuffled.csv", "-m", model, "--output-dir",
                     tmp_path / "eval", "-q"], capsys)  # fmt: skip
    assert code == 0, err
    # the validation table of fit is aligned by name too
    code, err = run(["fit", root / "data.csv", "-m", tmp_path / "v.cberl", "--valid",
                     tmp_path / "shuffled.csv", *QUICK], capsys)  # fmt: skip
    assert code == 0, err
    frame.drop(columns="audio_2").to_csv(tmp_path / "less.csv", index=False)
    code, err = run(["predict", tmp_path / "less.csv", "-m", model], capsys)
    assert code == 2 and "missing column(s) ['audio_2'] that the model was fitted on." in err
    assert "columns:" not in err


def test_bad_model_files_are_one_short_line_without_unpickling_advice(traps, tmp_path, capsys):
    root, _, model = traps
    noise = tmp_path / "noise.cberl"
    noise.write_bytes(bytes(random_bytes(3000)))
    code, err = run(["predict", root / "data.csv", "-m", noise], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and len(err) < 300
    assert "not a valid sklearn-cberl model file" in err
    for advice in ("--trust-pickle", "weights_only", "torch.load", "unpickl"):
        assert advice not in err
    code, err = run(["predict", root / "data.csv", "-m", noise, "--trust-pickle"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "neither an sklearn-cberl model file nor a readable joblib/pickle file" in err
    code, err = run(["evaluate", root / "data.csv", "-m", tmp_path], capsys)
    assert code == 2 and "is a directory, not a model file" in err
    cut = tmp_path / "cut.cberl"
    cut.write_bytes(model.read_bytes()[:-100])
    code, err = run(["predict", root / "data.csv", "-m", cut], capsys)
    assert code == 2 and "not a valid sklearn-cberl model file" in err and len(err) < 300
    # a genuine model still loads with --trust-pickle, through the safe loader
    out = tmp_path / "p.csv"
    assert main(["predict", str(root / "data.csv"), "-m", str(model), "--trust-pickle", "-o",
                 str(out), "-q"]) == 0  # fmt: skip


def random_bytes(n):
    import random

    return random.Random(1).randbytes(n)


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_outputs_are_never_an_input_through_a_link(traps, tmp_path, capsys, link):
    """`cberl fit data.csv -m hard.csv`, hard.csv a hard link to data.csv, overwrote the
    training data with the model (paths were compared after resolve())."""
    root, _, model = traps
    data = tmp_path / "data.csv"
    data.write_bytes((root / "data.csv").read_bytes())
    before = data.read_bytes()

    def alias(target, name):
        path = tmp_path / name
        os.link(target, path) if link == "hard" else path.symlink_to(target)
        return path

    (tmp_path / "eval").mkdir()
    cases = [
        ["fit", data, "-m", alias(data, "m.csv"), *QUICK],
        ["predict", data, "-m", model, "-o", alias(data, "p.csv")],
        ["predict", data, "-m", model, "-o", alias(model, "p.cberl")],
        ["evaluate", data, "-m", model, "--output-dir", tmp_path / "eval"],
    ]
    alias(data, "eval/report.csv")
    for argv in cases:
        code, err = run(argv, capsys)
        assert code == 2 and "that is an input file" in err, argv
    assert data.read_bytes() == before


def test_an_interrupted_output_leaves_the_previous_file(traps, tmp_path, capsys, monkeypatch):
    root, _, model = traps
    out = tmp_path / "pred.csv"
    out.write_text("previous\n")

    def disk_full(self, handle, *args, **kwargs):
        handle.write("dialogue_id,spea")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    code, err = run(["predict", root / "data.csv", "-m", model, "-o", out, "-q"], capsys)
    assert code == 2 and "No space left on device" in err
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]  # no temporary file


def test_demo_write_csv_feeds_fit_predict_and_evaluate(tmp_path, capsys):
    """docs/getting-started.md's command-line sequence on the demo data."""
    data = tmp_path / "data"
    assert main(["demo", "--write-csv", str(data), "--n-dialogues", "12", "-q"]) == 0
    names = ("train", "dev", "test")
    assert capsys.readouterr().out.split() == [str(data / f"{n}.csv") for n in names]
    tables = {n: pd.read_csv(data / f"{n}.csv") for n in names}
    assert all("emotion" in t.columns for t in tables.values())
    assert not set(tables["train"]["dialogue_id"]) & set(tables["test"]["dialogue_id"])
    model = tmp_path / "model.cberl"
    code, err = run(["fit", data / "train.csv", "-m", model, "--valid", data / "dev.csv",
                     *QUICK[:-1]], capsys)  # fmt: skip
    assert code == 0 and "using 'emotion'" in err, err
    assert main(["predict", str(data / "test.csv"), "-m", str(model), "-o",
                 str(tmp_path / "pred.csv"), "-q"]) == 0  # fmt: skip
    assert len(pd.read_csv(tmp_path / "pred.csv")) == len(tables["test"])
    assert main(["evaluate", str(data / "test.csv"), "-m", str(model), "--output-dir",
                 str(tmp_path / "eval"), "-q"]) == 0  # fmt: skip
    assert "WAF1" in capsys.readouterr().out


def test_ladder_end_to_end_writes_a_table_and_a_readable_plot(tmp_path, capsys):
    from matplotlib.image import imread

    data = tmp_path / "data"
    assert main(["demo", "--write-csv", str(data), "--n-dialogues", "16", "-q"]) == 0
    out = tmp_path / "ladder"
    argv = ["ladder", str(data / "train.csv"), "--valid", str(data / "dev.csv"), "--test",
            str(data / "test.csv"), "--seeds", "0", "1", "--rungs", "classifier",
            "+ EmoGAN 0.5", "--output-dir", str(out), "--scoring", "f1_macro",
            "--param", "clf__max_epochs=2", "--param", "clf__hidden_size=8",
            "--param", "aug__max_epochs=1", "--param", "aug__classifier_max_epochs=1",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "f1_macro" in captured.out and "| selected |" in captured.out
    assert "[ladder 4/4]" in captured.err and "min left" in captured.err  # progress + ETA
    frame = pd.read_csv(out / "ladder.csv")
    assert sorted(frame["rung"].unique()) == ["+ EmoGAN 0.5", "classifier", "selected"]
    assert len(frame) == 2 * 2 + 2 and {"valid", "test"} <= set(frame.columns)
    # Each seed's selected row is the fit of the rung it names (the rule may prefer the
    # simpler rung to a better validation score within the noise).
    fits = frame[frame["rung"] != "selected"].set_index(["seed", "rung"])
    for _, row in frame[frame["rung"] == "selected"].iterrows():
        assert row["chosen"] in ("classifier", "+ EmoGAN 0.5")
        assert fits.loc[(row["seed"], row["chosen"]), "test"] == row["test"]
    image = imread(out / "ladder.png")
    assert image.shape[0] > 300 and image.shape[1] > 300  # a readable figure, not a stub
    assert "selected" in (out / "ladder.md").read_text()
    assert main(["ladder", str(data / "train.csv"), "--valid", str(data / "dev.csv"),
                 "--rungs", "nonsense", "--output-dir", str(out)]) == 2  # fmt: skip
    assert "--rungs" in capsys.readouterr().err
    assert main(["ladder", str(data / "train.csv"), "--valid", str(data / "dev.csv"),
                 "--tolerance", "-1", "--output-dir", str(out)]) == 2  # fmt: skip
    assert "--tolerance" in capsys.readouterr().err
