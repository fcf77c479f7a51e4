"""scikit-build-core metadata provider for ganmetrics' optional dependencies.

The extras are listed in pyproject.toml under ``[tool.scikit-build.metadata.optional-dependencies]``.
An extra may also name local packages (``<extra>-local = ["path", ...]``, paths relative to the
project root); each becomes a direct reference ``name @ file:///absolute/path``. PEP 508 allows no
relative paths, so the absolute one is filled in at build time. The ``test`` extra uses this for the
torchvision stand-in that lets pip install pytorch-fid, clean-fid and torch-fidelity without the CUDA
build of torchvision (see tests/torchvision-stand-in/pyproject.toml).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # scikit-build-core depends on tomli there
    import tomli as tomllib


def _local_requirement(path: str) -> str:
    root = Path(path)
    if not root.is_absolute():
        root = Path.cwd() / root
    with open(root / "pyproject.toml", "rb") as fh:
        name = tomllib.load(fh)["project"]["name"]
    return f"{name} @ {root.resolve().as_uri()}"


def dynamic_metadata(field: str, settings: Mapping[str, Any]) -> dict[str, list[str]]:
    if field != "optional-dependencies":
        raise RuntimeError(f"ganmetrics_extras provides optional-dependencies only, not {field!r}")
    extras: dict[str, list[str]] = {}
    for key, value in settings.items():
        if key.endswith("-local"):
            continue
        extras[key] = list(value)
    for key, value in settings.items():
        if key.endswith("-local"):
            extra = key[: -len("-local")]
            extras.setdefault(extra, []).extend(_local_requirement(p) for p in value)
    return extras
