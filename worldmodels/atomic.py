"""Atomic single-file writes: a temp file in the target's folder, then ``os.replace``.

A crash mid-write leaves the previous file intact and no half-written one under the real name::

    atomic_write(path, lambda f: torch.save(obj, f))          # binary
    atomic_write(path, lambda f: json.dump(d, f), text=True)  # text

(Whole checkpoint *directories* are swapped in by ``worldmodels.train.checkpoint``.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[Any]], object], *, text: bool = False) -> Path:
    """Call ``write(f)`` on a temp file next to ``path`` and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
