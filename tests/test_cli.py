import json
import subprocess
import sys

import numpy as np
import pytest

import ganmetrics as gm
from ganmetrics.cli import main


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fid_stats_prdc(tmp_path, rng, capsys):
    x = rng.standard_normal((300, 6)).astype(np.float32)
    y = (rng.standard_normal((200, 6)) + 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    code, out, _ = run(["fid", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--json", "--quiet"], capsys)
    assert code == 0 and json.loads(out)["fid"] == pytest.approx(gm.fid(x, y), rel=1e-12)
    code, _, _ = run(["stats", str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.npz"), "--quiet"], capsys)
    assert code == 0
    code, out, _ = run(["fid", str(tmp_path / "s.npz"), str(tmp_path / "y.npy"), "--json", "--quiet"], capsys)
    assert json.loads(out)["fid"] == pytest.approx(gm.fid(x, y), rel=1e-9)
    code, out, _ = run(["prdc", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--k", "3", "--json"], capsys)
    assert code == 0 and json.loads(out)["precision"] == gm.prdc(x, y, k=3).precision


def test_errors_are_one_line_exit_2(tmp_path, rng, capsys):
    np.save(tmp_path / "x.npy", rng.standard_normal((10, 3)))
    np.save(tmp_path / "w.npy", rng.standard_normal((10, 4)))
    code, _, err = run(["fid", str(tmp_path / "x.npy"), str(tmp_path / "nope.npy")], capsys)
    assert code == 2 and err.startswith("ganmetrics: error:") and "no such file" in err
    code, _, err = run(["prdc", str(tmp_path / "x.npy"), str(tmp_path / "w.npy")], capsys)
    assert code == 2 and "features" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["prdc", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--k", "10"], capsys)
    assert code == 2 and "k = 10" in err


def test_example_and_module_entry_point():
    from ganmetrics.cli import EXAMPLE_SETS, _example_kwargs
    from ganmetrics.datasets import inception_like_features

    out = subprocess.run(
        [sys.executable, "-m", "ganmetrics", "example", "--n", "400", "--dim", "128", "--json"],
        capture_output=True, text=True, check=True,
    )
    res = json.loads(out.stdout)
    real = inception_like_features(400, 128, seed=0)
    assert [name for name, _, _ in EXAMPLE_SETS] == list(res["sets"])
    for name, kw, _ in EXAMPLE_SETS:
        fake = inception_like_features(400, 128, seed=1, **_example_kwargs(kw, 128))
        row = res["sets"][name]
        assert row["fid"] == pytest.approx(gm.fid(real, fake), rel=1e-12)
        ref = gm.prdc(real, fake, k=5)
        assert [row[m] for m in ("precision", "recall", "density", "coverage")] == \
            [ref[m] for m in ("precision", "recall", "density", "coverage")]
        # each value with the interval of a benchmark table: the real set fixed, as gm.bootstrap(resample="fake")
        boot = gm.bootstrap(real, fake, ["fid", "recall", "coverage"], resample="fake", seed=0)
        for m, iv in boot.items():
            got = row["intervals"][m]
            assert (got["low"], got["high"]) == pytest.approx((iv.low, iv.high), rel=1e-9, abs=1e-12), (name, m)
            assert got["method"] == iv.method and got["low"] <= row[m] <= got["high"]
    # the sets teach what they say: dropping modes keeps precision but loses recall; a shift loses precision
    same, dropped, shifted = (res["sets"][name] for name, _, _ in EXAMPLE_SETS)
    assert dropped["recall"] < same["recall"] - 0.1 and dropped["precision"] > same["precision"] - 0.1
    assert shifted["precision"] < same["precision"] - 0.1 and dropped["fid"] > same["fid"]


def test_example_text_explains_each_set(capsys):
    code, out, _ = run(["example", "--n", "200", "--dim", "8", "--quiet"], capsys)
    assert code == 0
    for phrase in ("same distribution:", "30% of modes dropped:", "shifted off the data:", "higher is better",
                   "±: half the interval. 95 % intervals, real set fixed"):
        assert phrase in out
    code, out, _ = run(["example", "--n", "200", "--dim", "8", "--quiet", "--n-boot", "0"], capsys)
    assert code == 0 and "±" not in out


def test_version_help_and_aligned_info(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ganmetrics {gm.__version__}"
    parser_help = subprocess.run([sys.executable, "-m", "ganmetrics", "compare", "--help"], capture_output=True,
                                 text=True, check=True).stdout
    for option in ("--metrics", "--k", "--seed", "--json", "--quiet", "REAL", "FAKE"):
        line = next(line for line in parser_help.splitlines() if line.strip().startswith(option))
        assert len(line.split()) > 1 or option in ("REAL", "FAKE"), f"{option} has no help text"
    code, out, _ = run(["info"], capsys)
    colons = {line.index(":") for line in out.splitlines()}
    assert code == 0 and len(colons) == 1  # one column of aligned keys


def test_cli_errors_speak_cli(tmp_path, rng, capsys):
    code, _, err = run(["fid", str(tmp_path), str(tmp_path)], capsys)
    assert code == 2 and "holds no images" in err  # a folder is an image input: one without images says so
    a = gm.FeatureStats.from_mean_cov(np.zeros(3), np.eye(3), n=10, feature_extractor="inception-v3")
    b = gm.FeatureStats.from_mean_cov(np.zeros(3), np.eye(3), n=10, feature_extractor="dinov2")
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    code, _, err = run(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], capsys)
    assert code == 2 and "--force" in err and "force=True" not in err
    code, out, _ = run(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--force", "--json"], capsys)
    assert code == 0 and json.loads(out)["fid"] == 0.0


def test_quiet_prints_nothing_but_the_result(tmp_path, rng, capsys, monkeypatch):
    import ganmetrics._progress as progress

    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # bars would show at once
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    np.save(tmp_path / "x.npy", rng.standard_normal((400, 5)))
    np.save(tmp_path / "y.npy", rng.standard_normal((400, 5)))
    for cmd in ("prdc", "compare"):
        code, out, err = run([cmd, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], capsys)
        # bars on a terminal (compare's k-NN values come from the pass that serves their interval rounds)
        assert code == 0 and "5-NN " in err and "fake x real " in err
        if cmd == "compare":
            assert "bootstrap rounds (PRDC)" in err and "FID influence of fake" in err
        code, out, err = run([cmd, str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--quiet"], capsys)
        assert code == 0 and out and "5-NN" not in err and "fake x real" not in err and "rounds" not in err


def test_no_bars_when_stderr_is_not_a_terminal(rng, capsys, monkeypatch):
    import ganmetrics._progress as progress

    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    x, y = rng.standard_normal((300, 4)), rng.standard_normal((300, 4))
    gm.prdc(x, y)  # progress=None and pytest's captured stderr is no terminal
    assert capsys.readouterr().err == ""
    gm.kid(x, y, subsets=3, subset_size=100, progress=True)
    assert "KID subsets of 100" in capsys.readouterr().err
    gm.prd(x, y, num_runs=2, progress=True)
    assert "PRD k-means" in capsys.readouterr().err
    gm.bootstrap(x, y, ["fid", "precision"], n_boot=3, progress=True)
    err = capsys.readouterr().err
    assert "FID influence of fake" in err and "FID influence of real" in err and "bootstrap rounds (PRDC)" in err
    gm.bootstrap(x, y, ["fid"], n_boot=3, progress=True, fid_method="half-sampling")
    assert "bootstrap rounds (FID)" in capsys.readouterr().err
    gm.fid_infinity(x, y, num_points=3, progress=True)
    assert "FD-infinity sizes" in capsys.readouterr().err
