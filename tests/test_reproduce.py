"""The paper-table runner end to end (quick demo mode, two seeds in two processes)."""

import json

import pytest

from sklearn_cberl.reproduce import run_reproduction


@pytest.mark.slow
def test_quick_demo_reproduction_in_two_processes_writes_every_table_and_figure(tmp_path):
    lines = []
    run_reproduction(
        "demo", seeds=(0, 1), quick=True, max_epochs=2, n_jobs=2, output_dir=tmp_path,
        device="cpu", log=lines.append,
    )  # fmt: skip
    out = tmp_path / "demo"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    for name, run in summary["runs"].items():
        # every model ran for both seeds, or failed with its reason recorded (ADASYN cannot
        # produce Table VI's counts)
        assert len(run["reports"]) == 2 or run["errors"], name
    assert any("processes" in line for line in lines)
    report = (out / "report.md").read_text()
    for table in ("Table I/II", "Table III", "Table IV", "Table V", "Table VI"):
        assert table in report
    for figure in ("fig6_confusion_matrix", "fig7_tsne_embeddings", "fig9_tsne_augmentation"):
        assert (out / f"{figure}.png").stat().st_size > 10_000


def test_paper_constants_have_one_home_and_the_tables_have_their_roles():
    from sklearn_cberl import PAPER_AUGMENTATION, paper
    from sklearn_cberl.experiments._report import MAIN_ROWS
    from sklearn_cberl.experiments._variants import build_variants

    assert PAPER_AUGMENTATION is paper.PAPER_AUGMENTATION
    variants, roles = build_variants(include_gamma_sweep=False)
    assert set(MAIN_ROWS) <= set(roles) and "ablation ++++" in roles
    assert roles["CBERL"] is roles["ablation ++++"]  # one model fills both roles
    assert len({v.name for v in variants}) == len(variants)
