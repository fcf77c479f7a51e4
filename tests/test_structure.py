"""The package's structure as ARCHITECTURE.md draws it: no import cycle (imports inside functions counted), imports
inside functions only for optional heavy dependencies, and metrics that never know where they run."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
METRICS = os.path.join(ROOT, "python", "ganmetrics", "metrics")


def test_no_import_cycle_and_no_import_hidden_in_a_function():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_imports.py"), ROOT],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("modules") and run.stdout.startswith("0 problem(s)")


def test_the_checker_finds_a_cycle_and_a_hidden_import(tmp_path):
    pkg = tmp_path / "python" / "ganmetrics"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from ganmetrics import b\n")
    (pkg / "b.py").write_text("def f():\n    from ganmetrics import a\n    import json\n")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_imports.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "import cycle: ganmetrics.a <-> ganmetrics.b" in run.stdout
    assert "import inside a function of ganmetrics.a" in run.stdout and "of json" in run.stdout


def test_metrics_never_branch_on_their_placement():
    """Each metric is written once, on the engine primitives: no metric module imports the ring or tests group=."""
    for name in sorted(os.listdir(METRICS)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(METRICS, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert "ring" not in (node.module or "") and "distributed" not in (node.module or ""), name
                assert all(a.name != "ring" for a in node.names), name
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "group":
                raise AssertionError(f"{name}:{node.lineno} tests group instead of asking an engine")
