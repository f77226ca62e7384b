"""Fixtures of the web-task tests: ``web_records`` on sys.path and a synthetic WMA file."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `web_records`

from web_records import records  # noqa: E402


@pytest.fixture
def wma_file(tmp_path):
    p = tmp_path / "web.json"
    p.write_text(json.dumps(records()))
    return p
