"""Progress bars for long work (trainings, sweeps): one tqdm bar on stderr, or a silent one."""
from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "step", initial: int = 0):
    """A tqdm bar on stderr (a silent no-op bar when ``enabled`` is false), starting at ``initial`` (a resumed
    run); use as a context manager."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                disable=not enabled, initial=initial)
