"""One progress-bar policy for the whole package."""
from __future__ import annotations

import sys


def progress_bar(enabled, **tqdm_kwargs):
    """A tqdm bar, or None when ``enabled`` is false (None: only when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(leave=False, **tqdm_kwargs)
