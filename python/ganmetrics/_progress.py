"""Progress bars (tqdm) that cost nothing when disabled."""

from __future__ import annotations

import contextlib
import sys


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


MIN_ROWS = 50_000  # below this the work takes well under a second: no bar


@contextlib.contextmanager
def progress_bar(total: int, desc: str, *, enabled: bool):
    if not enabled or total < MIN_ROWS:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="rows", unit_scale=True, file=sys.stderr, leave=False) as bar:
        yield bar
