"""Fixtures of the text-game tests: the hand-made records module on sys.path, and the shared
ByteSized32 sample loaded once per session (skipped when absent)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `tg_records`

BYTESIZED32 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bytesized32"


@pytest.fixture(scope="session")
def bytesized32() -> Path:
    """../shared/data/bytesized32; skips when absent (only in the dev checkout)."""
    if not (BYTESIZED32 / "test_dev.jsonl.gz").is_file():
        pytest.skip(f"shared ByteSized32 sample not found at {BYTESIZED32}")
    return BYTESIZED32


@pytest.fixture(scope="session")
def sample(bytesized32):
    """The 2,317 transitions of test_dev.jsonl.gz (mode full)."""
    from worldmodels.tasks.text_game_data import load_transitions

    return load_transitions(bytesized32 / "test_dev.jsonl.gz", "full")
