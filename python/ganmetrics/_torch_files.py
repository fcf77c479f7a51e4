"""Reading torch files as data only: ``torch.load(weights_only=True)`` with errors that name the file and
never advise loading with ``weights_only=False`` (which runs whatever code the file carries)."""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch

_ADVICE = ("weights_only", "trusted source", "torch.serialization", "add_safe_globals", "safe_globals")


def _plain(message: str) -> str:
    """torch's message without its advice on unsafe loading: the first line that states the problem."""
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not any(word in ln for word in _ADVICE)]
    return lines[0] if lines else "not a file of plain tensors"


def load_data(path: str | os.PathLike, what: str = "a PyTorch weights file") -> Any:
    """The tensors (and plain containers) of a torch file, never code; one ValueError naming the file."""
    p = os.fspath(path)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{p}: cannot be read as {what}: it holds objects other than tensors ({_plain(str(exc))}); "
                         "ganmetrics reads data only, never pickled code") from None
    except Exception as exc:  # torch raises several types for damaged or non-torch files
        raise ValueError(f"{p}: cannot be read as {what} ({type(exc).__name__}: {_plain(str(exc))})") from None
