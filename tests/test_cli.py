import pandas as pd
import pytest

from sklearn_cberl.cli import main

FAST = [
    "--param",
    "aug__max_epochs=2",
    "--param",
    "aug__classifier_max_epochs=2",
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
