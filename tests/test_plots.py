"""The pictures: each plot renders from a small image set (arrays and an image folder), shows the samples the
metric points at, and writes its file atomically; the leaderboard plot names its generators on every panel."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ganmetrics as gm

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    base = rng.random((60, 1, 8, 8)).astype(np.float32)  # 60 "training images" in [0, 1], NCHW
    fake = np.concatenate([base[:4], np.clip(base[4:8] + 0.01, 0, 1), rng.random((12, 1, 8, 8)).astype(np.float32)])
    return base, fake, base.reshape(60, -1), fake.reshape(20, -1)


def _is_png(path):
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head == PNG and os.path.getsize(path) > 2000


def test_nearest_neighbour_grid_puts_the_copies_first(digits, tmp_path):
    train, fake, tf, ff = digits
    fig = gm.plot_nearest_neighbours(train, fake, train_features=tf, fake_features=ff, k=3, rows=6)
    axes = np.array(fig.axes).reshape(6, 4)
    titles = [ax.get_title() for ax in axes[:, 0]]
    mem = gm.memorization(tf, ff)
    assert mem.flagged[:8].all() and not mem.flagged[8:].any()
    assert all("COPY" in t for t in titles)  # the 8 flagged samples come first (6 rows shown)
    nb = gm.train_neighbours(tf, ff, k=3)
    first = int(titles[0].split()[1])
    assert axes[0, 1].get_title().startswith(f"train {nb.indices[first, 0]}\n")
    path = gm.plot_nearest_neighbours(train, fake, train_features=tf, fake_features=ff, path=tmp_path / "nn.png")
    assert _is_png(path)


def test_plots_read_image_folders(digits, tmp_path):
    from PIL import Image

    train, fake, tf, ff = digits
    folder = tmp_path / "fake"
    folder.mkdir()
    for i, img in enumerate(fake):
        Image.fromarray((img[0] * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    path = gm.plot_nearest_neighbours(train, str(folder), train_features=tf, fake_features=ff, k=2, rows=3,
                                      path=tmp_path / "folder_nn.png")
    assert _is_png(path)
    with pytest.raises(ValueError, match="fake_features has 19 rows"):
        gm.plot_nearest_neighbours(train, str(folder), train_features=tf, fake_features=ff[:19])


def test_realism_holes_and_detectable_render(digits, tmp_path):
    train, fake, tf, ff = digits
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copies of kept real samples have realism +inf, with a warning
        fig = gm.plot_realism(tf, fake, fake_features=ff, n=5)
        score = gm.realism_score(tf, ff, k=3)
    assert len(fig.axes) == 10
    order = np.argsort(-score, kind="stable")
    assert [int(ax.get_title().split(":")[0]) for ax in fig.axes[:5]] == order[:5].tolist()
    assert [int(ax.get_title().split(":")[0]) for ax in fig.axes[5:]] == order[::-1][:5].tolist()
    assert _is_png(gm.plot_coverage_holes(train, ff, real_features=tf, n=6, path=tmp_path / "holes.png"))
    holes = gm.coverage_holes(tf, ff, k=5)
    fig = gm.plot_coverage_holes(train, ff, real_features=tf, n=6, cols=3)
    shown = [int(ax.get_title().split()[1]) for ax in fig.axes if ax.get_title()]
    assert shown == holes.holes[:6].tolist()
    res = gm.c2st(tf, ff, permutations=0, folds=4)
    assert _is_png(gm.plot_detectable(fake, res, n=6, path=tmp_path / "det.png"))
    with pytest.raises(TypeError, match="c2st"):
        gm.plot_detectable(fake, {"accuracy": 1.0})
    with pytest.raises(ValueError, match="rows"):
        gm.plot_nearest_neighbours(train, fake, train_features=tf, fake_features=ff, rows=0)


def test_a_failed_save_leaves_no_file(digits, tmp_path):
    train, fake, tf, ff = digits
    with pytest.raises((ValueError, OSError)):
        gm.plot_realism(tf, fake, fake_features=ff, path=tmp_path / "missing" / "r.png")
    assert not (tmp_path / "missing").exists()


def test_leaderboard_plot_names_generators_and_draws_points(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    rng = np.random.default_rng(1)
    ref = gm.Reference.build(rng.standard_normal((200, 6)), metrics=("fid", "precision"), k=3)
    fakes = {"gan-a": rng.standard_normal((150, 6)), "vae": rng.standard_normal((150, 6)) + 0.3}
    board = gm.evaluate_many(ref, fakes, n_boot=4)
    import matplotlib.pyplot as plt

    captured = {}
    real_close = plt.close

    def keep(fig=None):
        captured.setdefault("fig", fig)
        return real_close(fig)

    plt.close = keep
    try:
        board.plot(str(tmp_path / "points.png"))
    finally:
        plt.close = real_close
    fig = captured["fig"]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["gan-a", "vae"]
        assert all(line.get_linestyle() in ("None", "") for line in ax.get_lines() if len(line.get_xdata()) == 2)
    assert mpimg.imread(tmp_path / "points.png").shape[0] > 100
    board.plot(str(tmp_path / "lines.png"), lines=True)
    assert _is_png(tmp_path / "lines.png")
