"""`ganmetrics novelty` and `ganmetrics c2st`: the library's numbers, the pictures for image inputs, the checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics.cli import main

pytest.importorskip("sklearn")


def _json(argv, capsys):
    code = main([*argv, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.standard_normal((400, 12)).astype(np.float32)
    fake = np.concatenate([train[:30] + np.float32(1e-3), rng.standard_normal((170, 12)).astype(np.float32)])
    test = rng.standard_normal((250, 12)).astype(np.float32)
    for name, x in (("train", train), ("fake", fake), ("test", test)):
        np.save(tmp_path / f"{name}.npy", x)
    return tmp_path, train, fake, test


def test_novelty_gives_the_library_values(features, capsys):
    tmp, train, fake, test = features
    out = _json(["novelty", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--test", str(tmp / "test.npy")], capsys)
    mem = gm.memorization(train, fake)
    assert out["memorization"] == mem.fraction and out["copies"] == 30
    assert out["flagged_indices"] == list(range(30))
    assert out["authpct"] == gm.authpct(train, fake).authpct
    assert out["ct"] == gm.ct_score(train, test, fake).ct
    text_code = main(["novelty", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--quiet"])
    text = capsys.readouterr().out
    assert text_code == 0 and "memorization" in text and "flagged_indices" not in text


def test_c2st_gives_the_library_values(features, capsys):
    tmp, train, fake, _ = features
    out = _json(["c2st", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--permutations", "9", "--seed", "3"], capsys)
    res = gm.c2st(train, fake, permutations=9, seed=3)
    assert (out["accuracy"], out["auc"], out["p_value"]) == (res.accuracy, res.auc, res.p_value)
    assert out["most_detectable"] == res.most_detectable[:10].tolist()


def test_html_pages_with_the_pictures_for_images(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name, n in (("train", 40), ("fake", 12)):
        (tmp_path / name).mkdir()
    imgs = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    for i in range(40):
        Image.fromarray(imgs[i]).save(tmp_path / "train" / f"{i:02d}.png")
    for i in range(12):
        Image.fromarray(imgs[i] if i < 4 else rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / "fake" / f"{i:02d}.png")
    kw = ["--extractor", "digits", "--workers", "0", "--no-cache"]
    out = _json(["novelty", str(tmp_path / "train"), str(tmp_path / "fake"), "--html", str(tmp_path / "page"), *kw],
                capsys)
    assert out["copies"] >= 4 and set(out["flagged_indices"]) >= {0, 1, 2, 3}
    page = (tmp_path / "page" / "index.html").read_text()
    assert "nearest.png" in page and "realism.png" in page
    for name in ("nearest.png", "realism.png"):
        assert (tmp_path / "page" / name).read_bytes()[:4] == b"\x89PNG"
    out = _json(["c2st", str(tmp_path / "train"), str(tmp_path / "fake"), "--permutations", "0", "--folds", "3",
                 "--html", str(tmp_path / "det"), *kw], capsys)
    assert (tmp_path / "det" / "detectable.png").exists() and "p_value" not in out


def test_novelty_and_c2st_errors_speak_cli(features, capsys):
    tmp, *_ = features
    code = main(["novelty", str(tmp / "missing.npy"), str(tmp / "fake.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ganmetrics: error: TRAIN: no such file") and err.count("\n") == 1
    code = main(["novelty", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--threshold", "2"])
    assert code == 2 and "threshold" in capsys.readouterr().err
    code = main(["c2st", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--classifier", "svm"])
    assert code == 2
    capsys.readouterr()
    code = main(["novelty", str(tmp / "train.npy"), str(tmp / "fake.npy"), "--test", str(tmp / "nope.npy")])
    assert code == 2 and "TEST: no such file" in capsys.readouterr().err
    (tmp / "imgs").mkdir()
    code = main(["novelty", str(tmp / "imgs"), str(tmp / "fake.npy"), "--html", str(tmp / "imgs")])
    assert code == 2 and "--html" in capsys.readouterr().err
