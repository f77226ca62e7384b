"""The Real2Sim HTML report: files written, and the page loads in headless Chromium with
every image resolved (skips when Chromium is not installed)."""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from planners.report import tile_clips, write_report
from planners.simpler import ranking_metrics


def fake_results():
    tasks, models = ["push", "drawer"], ["base", "rlvr"]
    pols = [{"name": f"p{i}", "description": f"policy {i} <b>"} for i in range(5)]
    rng = np.random.default_rng(0)
    success, metrics = {}, {m: {} for m in models}
    for t in tasks:
        real = np.linspace(0.05, 0.95, 5)
        success[t] = {p["name"]: {"real": float(real[i]), "sim": {m: float(np.clip(real[i] + rng.normal(0, 0.1), 0, 1)) for m in models}}
                      for i, p in enumerate(pols)}
    for m in models:
        for t in tasks:
            metrics[m][t] = ranking_metrics([success[t][p["name"]]["real"] for p in pols],
                                            [success[t][p["name"]]["sim"][m] for p in pols])
        metrics[m]["overall"] = {"pearson": 0.9, "mmrv": 0.04, "n": 10}
    res = {"tasks": tasks, "models": models, "policies": pols, "success": success, "metrics": metrics,
           "episodes": 4, "readout": {"push": {"mae": 0.01, "success_agreement": 0.97}}}
    clip = (rng.random((6, 16, 16, 3)) * 255).astype(np.uint8)
    videos = {(t, p["name"]): [clip, clip[:4], clip] for t in tasks for p in pols[:2]}
    return res, videos


def test_tile_clips_pads_time():
    a = np.zeros((5, 8, 8, 3), np.uint8)
    b = np.full((3, 8, 8, 3), 7, np.uint8)
    out = tile_clips([a, b], gap=2)
    assert out.shape == (5, 8, 18, 3)
    assert (out[4, :, 10:] == 7).all()  # shorter clip holds its last frame


def test_report_files(tmp_path):
    res, videos = fake_results()
    page = write_report(res, videos, tmp_path / "out")
    html = page.read_text()
    assert "&lt;b&gt;" in html  # descriptions escaped
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["metrics"]["base"]["push"]["n"] == 5 and len(data["gifs"]) == 4
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(srcs) == 1 + 4
    for s in srcs:
        if s.startswith("data:image/png;base64,"):
            assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert (page.parent / s).is_file(), s
    with pytest.raises(ValueError, match="lacks 'metrics'"):
        write_report({k: v for k, v in res.items() if k != "metrics"}, None, tmp_path / "x")


CHECK = """<script>
window.addEventListener('load', () => {
  const bad = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 40));
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken', bad.join('|') || 'none');
});
</script></body>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if exe:
            return exe
    pytest.skip("Chromium not installed (apt-get install -y chromium); the report render test needs it")


def test_report_renders_in_chromium(tmp_path):
    exe = chromium()
    res, videos = fake_results()
    page = write_report(res, videos, tmp_path / "out")
    probe = page.parent / "_probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK))
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "Real2Sim policy evaluation" in dom
    m = re.search(r'data-images="(\d+)"[^>]*data-broken="([^"]*)"', dom)
    assert m, "load handler did not run: " + dom[-500:]
    assert int(m.group(1)) == 5
    assert m.group(2) == "none", f"images that failed to load: {m.group(2)}"
