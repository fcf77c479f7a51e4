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
    out = subprocess.run(
        [sys.executable, "-m", "ganmetrics", "example", "--n", "300", "--dim", "16", "--json"],
        capture_output=True, text=True, check=True,
    )
    res = json.loads(out.stdout)
    assert res["fid"] > 0 and 0 <= res["precision"] <= 1
