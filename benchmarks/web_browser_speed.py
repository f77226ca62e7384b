"""Browser steps per second for data building: 1 vs 2 parallel browser contexts.

    .venv/bin/python benchmarks/web_browser_speed.py --episodes 6 --workers 1 2

Runs ``--episodes`` scripted episodes (noise ``--noise``, cycling over the scripted families of
the three sites, seeds 0..) with :func:`worldmodels.envs.web.agents.run_parallel` on each
worker count: each worker is a thread owning its own WebEnv (its own Chromium process and site
servers). Reported: wall seconds of the whole call (Chromium launch included), environment
steps, steps/s and the success rate. Needs Playwright (the ``browser`` extra), Flask and a
system Chromium (``WM_CHROMIUM`` or ``chromium`` on PATH).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def bench(episodes: int, workers: int, noise: float, max_steps: int) -> dict:
    from worldmodels.envs.web.agents import SCRIPTS, run_parallel

    families = sorted(SCRIPTS)
    jobs = [{"site": families[i % len(families)][0], "family": families[i % len(families)][1],
             "seed": i, "agent": noise, "max_steps": max_steps} for i in range(episodes)]
    t = time.perf_counter()
    results = run_parallel(jobs, workers=workers)
    wall = time.perf_counter() - t
    steps = sum(len(r["steps"]) for r in results)
    return {"workers": workers, "episodes": episodes, "steps": steps, "wall_s": round(wall, 2),
            "steps_per_s": round(steps / wall, 2),
            "success_rate": sum(r["success"] for r in results) / len(results)}


def main(argv=None) -> None:
    from bench_io import emit_json

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--noise", type=float, default=0.1)
    p.add_argument("--max-steps", type=int, default=15)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    rows = [bench(a.episodes, w, a.noise, a.max_steps) for w in a.workers]
    emit_json({"benchmark": "web_browser_speed", "cpus": os.cpu_count(), "results": rows}, a.out)


if __name__ == "__main__":
    main()
