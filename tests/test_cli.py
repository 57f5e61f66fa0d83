import pandas as pd
import pytest

from sklearn_cberl.cli import main

FAST = [
    "--param",
    "aug__n_epochs=2",
    "--param",
    "aug__classifier_epochs=2",
    "--param",
    "fuse__n_epochs=2",
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
    ],
)
def test_errors_are_one_line_messages(tables, capsys, argv, message):
    (tables / "data.txt").write_text("x")
    argv = [a.format(train=tables / "train.csv", txt=tables / "data.txt") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


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
