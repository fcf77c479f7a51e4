"""scripts/gpu_check.sh, the one command a lent GPU runs, proven without a GPU: its dry run downloads the wheel
the device lacks, configures the CUDA build where nvcc is, and runs the benchmark's code on CPU tensors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_check_dry_run(tmp_path):
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), "--dry-run"], cwd=ROOT,
                         env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True, timeout=880)
    log = (tmp_path / "gpu_check.log").read_text() if (tmp_path / "gpu_check.log").exists() else ""
    assert run.returncode == 0, run.stdout + run.stderr + log[-4000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["step"]: s["status"] for s in report["steps"]}
    assert report["dry_run"] and steps["wheels"] == "0" and steps["bench"] == "0"
    assert steps["gpu-tests"] == steps["memcheck"] == "skipped"
    assert steps["configure"] == ("0" if shutil.which("nvcc") else "skipped")
    assert any(f.startswith("scipy_openblas32-") for f in os.listdir(os.path.join(ROOT, ".whl")))
    names = [row["name"] for row in report["bench"]["rows"]]
    for wanted in ("statistics", "fd d=", "fid_many", "prdc", "kid", "inception extraction"):
        assert any(wanted in n for n in names), (wanted, names)
    assert not [row for row in report["bench"]["rows"] if "error" in row], report["bench"]["rows"]
    assert set(os.listdir(tmp_path)) <= {"gpu_check.json", "gpu_check.log", "gpu_bench.json", ".steps.tsv"}
