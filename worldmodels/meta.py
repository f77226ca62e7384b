"""``worldmodel.json``: the file that makes a directory a world model (no dependencies, so
tasks can read a recorded layout without importing ``world_model``).

    meta = read_world_model_meta("runs/wm_video")   # {"format": 1, "kind": "video", ...}
"""

from __future__ import annotations

import json
from pathlib import Path

WM_FILE = "worldmodel.json"
FORMAT = 1


def read_world_model_meta(directory: str | Path) -> dict:
    """``worldmodel.json`` of ``directory``; a clear error naming the file when absent or broken."""
    p = Path(directory) / WM_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{directory}: not a world model directory (no {WM_FILE}; "
                                f"train one with `wm pretrain <modality> --out {directory}`)")
    try:
        meta = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e
    if not isinstance(meta, dict) or "kind" not in meta:
        raise ValueError(f"{p}: expected a JSON object with a 'kind' (the task that wrote it)")
    return meta
