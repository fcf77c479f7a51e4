"""The one progress facility: tqdm bars on a terminal, nothing otherwise.

Every step that can take more than a couple of seconds (statistics over a file, each k-NN pass, KID
subsets, PRD clustering, bootstrap rounds, FD-infinity sizes) reports here, with its unit of work in
the label. ``progress=None`` (the default of the public functions) shows bars when stderr is a
terminal, ``False`` never (the CLI's ``--quiet``), ``True`` always. A bar appears only once its step
has run for two seconds, so quick calls print nothing.

Kernels that run in C++ with the GIL released advance a one-element int64 counter; :func:`counted`
follows it from a helper thread while the kernel runs in the calling thread.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Callable, Iterator

import numpy as np

DELAY_S = 2.0
POLL_S = 0.2


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, desc: str, *, unit: str = "rows", enabled: bool | None = None) -> Iterator[Any]:
    """A bar of ``total`` ``unit`` labelled ``desc`` (``enabled``: see the module doc)."""
    if not _is_on(enabled) or total <= 0:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "rows", file=sys.stderr, leave=False,
              delay=DELAY_S, dynamic_ncols=True) as bar:
        yield bar


def _is_on(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def counted(run: Callable[[np.ndarray | None], Any], total: int, desc: str, *, unit: str = "rows",
            progress: bool | None = None) -> Any:
    """``run(counter)`` with a bar that follows ``counter[0]`` (advanced by the kernel) up to ``total``."""
    if not _is_on(progress) or total <= 0:
        return run(None)
    counter = np.zeros(1, dtype=np.int64)
    stop = threading.Event()
    with progress_bar(total, desc, unit=unit, enabled=True) as bar:

        def follow() -> None:
            shown = 0
            while not stop.wait(POLL_S):
                now = int(counter[0])
                if now > shown:
                    bar.update(now - shown)
                    shown = now

        watcher = threading.Thread(target=follow, name="ganmetrics-progress", daemon=True)
        watcher.start()
        try:
            return run(counter)
        finally:
            stop.set()
            watcher.join()


def steps(iterable: Any, total: int, desc: str, *, unit: str, progress: bool | None = None) -> Iterator[Any]:
    """Iterate with a bar (Python-level loops: bootstrap rounds, FD-infinity sizes, k-means iterations)."""
    with progress_bar(total, desc, unit=unit, enabled=progress) as bar:
        for item in iterable:
            yield item
            bar.update(1)
