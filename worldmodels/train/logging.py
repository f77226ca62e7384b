"""Run logging: JSONL always; TensorBoard / W&B when installed and asked for; tqdm progress.

    log = RunLogger("runs/wm", enabled=info.is_main, tensorboard="auto", wandb=False)
    log.log(step, {"loss": 2.1, "tokens_per_s": 12000.0})   # -> runs/wm/metrics.jsonl
    log.close()
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    """Writes one JSON object per ``log`` call to ``<run_dir>/metrics.jsonl`` (appending, so a
    resumed run continues the same file) and mirrors scalars to TensorBoard / W&B if enabled.

    tensorboard / wandb: True (required: error if missing), False, or "auto" (use if installed).
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool | str = "auto",
                 wandb: bool | str = False, project: str = "worldmodels", config: dict | None = None):
        self.enabled = enabled
        self.path = Path(run_dir) / METRICS_FILE
        self.tb = self.wb = None
        self.t0 = time.time()
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except ImportError as e:
                if tensorboard is True:
                    raise ImportError("tensorboard=True but tensorboard is not installed "
                                      "(pip install 'worldmodels[tracking]')") from e
        if wandb:
            try:
                import wandb as wb

                self.wb = wb.init(project=project, dir=str(run_dir), config=config or {},
                                  resume="allow")
            except ImportError as e:
                if wandb is True:
                    raise ImportError("wandb=True but wandb is not installed "
                                      "(pip install 'worldmodels[tracking]')") from e

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), "time_s": round(time.time() - self.t0, 3)}
        for k, v in metrics.items():
            v = float(v) if hasattr(v, "__float__") and not isinstance(v, (str, bool)) else v
            row[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
        if self.wb is not None:
            self.wb.log(scalars, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wb is not None:
            self.wb.finish()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All rows of a run's metrics.jsonl."""
    p = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def progress(total: int, initial: int = 0, enabled: bool = True, desc: str = "train"):
    """A tqdm bar (disabled off the main rank); set ``bar.set_postfix(tok_s=...)`` as you go."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True)
