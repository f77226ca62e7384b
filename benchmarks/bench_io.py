"""Output shared by the benchmark scripts (imported from the script's own folder)."""

from __future__ import annotations

import json
from pathlib import Path


def emit_json(result: dict, out: str | None = None) -> None:
    """Print ``result`` as indented JSON; also write it to ``out`` when given."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
