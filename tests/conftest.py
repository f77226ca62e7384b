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
