"""Shared helpers of the web tests: the WMA sample files (skipping when absent)."""

from __future__ import annotations

import json

import pytest

WMA_FILES = ("sample_webarena_tao_dev.json", "sample_webarena_acctree_dev.json", "sample_mind2web_acctree_dev.json")
TREE_FIELDS = ("observation", "next_state_acctree", "cleaned_accessibility_tree", "cleaned_next_accessibility_tree")


@pytest.fixture
def wma_dir(shared_data):
    d = shared_data / "wma"
    if not d.is_dir():
        pytest.skip(f"WMA samples not found at {d}")
    return d


@pytest.fixture
def wma_trees(wma_dir):
    """Every tree text of the shared samples as (file, record, field, text)."""
    out = []
    for name in WMA_FILES:
        for i, rec in enumerate(json.loads((wma_dir / name).read_text())):
            out += [(name, i, f, rec[f]) for f in TREE_FIELDS if f in rec]
    return out
