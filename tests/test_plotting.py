import numpy as np

from sklearn_cberl.metrics import emotion_report
from sklearn_cberl.plotting import (
    plot_confusion_matrix,
    plot_f1_bars,
    plot_history,
    plot_tsne,
    tsne_embedding,
)


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def test_confusion_matrix_png(tmp_path):
    fig = plot_confusion_matrix(
        ["a", "b", "b"], ["a", "b", "a"], normalize=None, path=tmp_path / "cm.png"
    )
    _png(tmp_path / "cm.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "0", "1", "1"]  # counts, row = true label


def test_f1_bars_and_history(tmp_path):
    reports = {
        "lr": emotion_report(["a", "b", "b"], ["a", "b", "a"]),
        "cberl": emotion_report(["a", "b", "b"], ["a", "b", "b"]),
    }
    fig = plot_f1_bars(reports, path=tmp_path / "f1.png")
    _png(tmp_path / "f1.png")
    assert len(fig.axes[0].patches) == 4  # 2 models x 2 classes
    fig = plot_history(
        [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}], path=tmp_path / "h.png"
    )
    _png(tmp_path / "h.png")
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), [2.0, 1.0])


def test_tsne_subsamples_and_separates(tmp_path):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(150, 5), rng.randn(150, 5) + 8])
    y = np.repeat(["a", "b"], 150)
    points, index = tsne_embedding(X, max_points=100, random_state=0)
    assert points.shape == (100, 2) and len(np.unique(index)) == 100
    # two well-separated clusters stay separated in 2-D
    labels = y[index]
    gap = np.linalg.norm(points[labels == "a"].mean(0) - points[labels == "b"].mean(0))
    assert gap > 3 * points[labels == "a"].std(0).max()
    plot_tsne({"raw": (X, y), "twice": (X * 2, y)}, max_points=100, path=tmp_path / "t.png")
    _png(tmp_path / "t.png")


def test_confusion_matrix_normalized():
    fig = plot_confusion_matrix([0, 0, 1], [0, 1, 1])  # rows normalised by default
    assert [t.get_text() for t in fig.axes[0].texts] == ["50%", "50%", "0%", "100%"]
    assert len(fig.axes) == 2 and "share of the true class" in fig.axes[1].get_ylabel()
