"""Shared fixtures of the toy text task tests: the task module on sys.path, and one world model
pretrained with ``run_pretrain`` (full fine-tuning) for the whole session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `toy_text` (also for dotted rewards)

import toy_text  # noqa: E402  (registers the "toy_text" task)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory):
    """(world-model dir, run_pretrain's result) of a full fine-tuning run on the toy task."""
    from worldmodels.pipelines import run_pretrain

    out = tmp_path_factory.mktemp("toy_text") / "pretrain"
    return out, run_pretrain(toy_text.pretrain_config(out))
