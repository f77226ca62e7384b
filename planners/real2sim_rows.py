"""The rows of a `wm real2sim run` as they are measured, so an interrupted run can resume.

Each (task, policy) row -- real and simulated per-episode successes for every model -- is
appended to ``<report>/rows.jsonl`` when it is done, its side-by-side clips to
``<report>/gifs/<task>_<policy>.gif`` (the file the final report writes too). A resumed run
(same recorded config, checked by the command) keeps those rows and measures only the others::

    log = RowLog("runs/real2sim", n_models=2, image_size=64, resume=True)
    results, videos = evaluate(cfg, models, readout, rows=log)    # planners.real2sim
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROWS_FILE = "rows.jsonl"


class RowLog:
    """Finished rows of one report directory.

    report_dir: the run's report directory. n_models: world models per row (clips per GIF =
    1 + n_models). image_size: frame size (to cut the GIF back into clips). resume: keep the
    rows already logged (False: start an empty log; the run is a fresh one).
    """

    def __init__(self, report_dir: str | Path, n_models: int, image_size: int, resume: bool) -> None:
        self.dir, self.n_models, self.image_size = Path(report_dir), n_models, image_size
        self.path = self.dir / ROWS_FILE
        self.rows: dict[tuple[str, str], dict] = {}
        if resume and self.path.is_file():
            lines = self.path.read_text().splitlines()
            for n, line in enumerate(lines, 1):
                try:
                    rec = json.loads(line)
                    self.rows[(rec["task"], rec["policy"])] = rec
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    if n < len(lines):  # only the last line may be cut by the interruption
                        raise ValueError(f"{self.path} line {n}: not a row record ({e})") from e
        from worldmodels.atomic import atomic_write

        # the kept rows only (a cut last line is dropped, so appended rows start on a new line)
        atomic_write(self.path, lambda f: f.writelines(json.dumps(r) + "\n" for r in self.rows.values()),
                     text=True)

    def get(self, task: str, policy: str) -> tuple[dict, list[np.ndarray], float] | None:
        """(row, clips [(T,H,W,3) real, then one per model; [] without a GIF], seconds) of a
        logged row, or None when it still has to be measured."""
        rec = self.rows.get((task, policy))
        if rec is None:
            return None
        gif = self.dir / "gifs" / f"{task}_{policy}.gif"
        clips = []
        if gif.is_file():
            from planners.real2sim import _gif_panels

            clips = _gif_panels(gif, 1 + self.n_models, self.image_size)
        return rec["row"], clips, float(rec["seconds"])

    def put(self, task: str, policy: str, row: dict, clips: list[np.ndarray], seconds: float) -> None:
        """Log a measured row (GIF first, then the line that makes the row count as done)."""
        if clips:
            from planners.report import tile_clips, write_gif

            write_gif(self.dir / "gifs" / f"{task}_{policy}.gif", tile_clips(clips))
        rec = {"task": task, "policy": policy, "seconds": seconds, "row": row}
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        self.rows[(task, policy)] = rec
