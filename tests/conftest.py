"""Test-wide settings: headless MuJoCo, Triton's CPU interpreter, one thread, offline."""

import os
from pathlib import Path

# Must happen before any kernel module or mujoco is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("WM_TEST_THREADS", "1")))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the project root; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA} (only present in the dev checkout)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def web_env():
    """One browser ``WebEnv`` on the local sites per test module (system Chromium via Playwright);
    skips with the reason when Playwright, Flask or Chromium is missing."""
    pytest.importorskip("playwright", reason="Playwright missing: pip install -e '.[browser]'")
    pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")
    from worldmodels.envs.web.browser import WebEnv, find_chromium

    try:
        find_chromium()
    except RuntimeError as e:
        pytest.skip(str(e))
    with WebEnv() as e:
        yield e
