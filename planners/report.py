"""Self-contained HTML report of a Real2Sim run (plus its ``results.json``).

``results`` is the dict `planners.real2sim.evaluate` returns::

    {"tasks": [...], "models": [...], "episodes": N,
     "policies": [{"name", "description"}],
     "success": {task: {policy: {"real": r, "sim": {model: s}}}},
     "metrics": {model: {task|"overall": {"pearson", "mmrv", "n"}}},
     "readout": {task: {"mae", "success_agreement"}}}   # optional

``videos`` maps ``(task, policy)`` to a list of uint8 clips (T,H,W,3): the real rollout first,
then one per world model; they are tiled side by side into ``gifs/<task>_<policy>.gif``
(relative files next to the page). The scatter plot is an inline base64 PNG::

    write_report(results, videos, "out/real2sim")   # -> out/real2sim/index.html, results.json
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import os
from pathlib import Path

import numpy as np

from worldmodels.atomic import atomic_write

TEMPLATE_DIR = Path(__file__).parent / "templates"


def scatter_png(results: dict) -> str:
    """Base64 PNG: simulated vs real success per (policy, task), one marker per model, diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=90)
    markers = {t: m for t, m in zip(results["tasks"], "osD^v<>", strict=False)}
    for mi, model in enumerate(results["models"]):
        for task in results["tasks"]:
            rows = results["success"][task]
            r = [rows[p["name"]]["real"] for p in results["policies"]]
            s = [rows[p["name"]]["sim"][model] for p in results["policies"]]
            ax.scatter(r, s, marker=markers[task], color=f"C{mi}", alpha=0.8, label=f"{model} · {task}")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="diagonal (sim = real)")
    ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel="real success (MuJoCo)",
           ylabel="simulated success (world model)", title="Real2Sim: per policy and task")
    ax.legend(fontsize=7, loc="upper left")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def tile_clips(clips: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Clips (T_i,H,W,3) uint8 -> (T_max,H,sum W + gaps,3); shorter clips hold their last frame."""
    if not clips:
        raise ValueError("tile_clips needs at least one clip")
    T = max(len(c) for c in clips)
    H = max(c.shape[1] for c in clips)
    out = []
    for t in range(T):
        row = []
        for i, c in enumerate(clips):
            f = c[min(t, len(c) - 1)]
            if f.shape[0] != H:
                f = np.pad(f, ((0, H - f.shape[0]), (0, 0), (0, 0)))
            row.append(f)
            if i < len(clips) - 1:
                row.append(np.full((H, gap, 3), 255, np.uint8))
        out.append(np.concatenate(row, axis=1))
    return np.stack(out)


def write_gif(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.gif")
    imageio.mimsave(tmp, list(frames.astype(np.uint8)), duration=1.0 / fps, loop=0)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda f: json.dump(data, f, indent=2, default=float), text=True)


def write_report(results: dict, videos: dict | None, out_dir: str | Path) -> Path:
    """Write ``index.html``, ``results.json`` and ``gifs/*.gif`` into ``out_dir``; return the page path."""
    import jinja2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for key in ("tasks", "models", "policies", "success", "metrics"):
        if key not in results:
            raise ValueError(f"results dict lacks {key!r} (expected the output of planners.real2sim.evaluate)")
    gifs = []
    for (task, policy), clips in sorted((videos or {}).items()):
        rel = f"gifs/{task}_{policy}.gif"
        write_gif(out / rel, tile_clips(clips))
        names = ["real", *results["models"]][: len(clips)]
        gifs.append({"src": rel, "caption": f"{task} · {policy}: " + " | ".join(names)})
    width = 0
    if videos:
        first = next(iter(videos.values()))
        width = 2 * sum(c.shape[2] for c in first)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True)
    html = env.get_template("report.html.j2").render(
        tasks=results["tasks"], models=results["models"], policies=results["policies"],
        success=results["success"], metrics=results["metrics"],
        scopes=[*results["tasks"], "overall"], episodes=results.get("episodes", "?"),
        action_repeat=results.get("action_repeat", 1),
        readout=results.get("readout"), scatter_png=scatter_png(results), gifs=gifs,
        gif_width=width or 256, generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    page = out / "index.html"
    tmp = page.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, page)
    write_json(out / "results.json", {**results, "gifs": [g["src"] for g in gifs]})
    return page
