"""Kernel tests run the real Triton kernels on CPU through Triton's interpreter.

``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` before anything imports Triton; here the
interpreter path of ``kernels`` is switched on for each test (and off again afterwards, so
other packages' tests keep the fast torch reference path).
"""

import os

import pytest


@pytest.fixture(autouse=True)
def _triton_interpreter():
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("kernel tests need TRITON_INTERPRET=1 set before triton is imported")
    from kernels._runtime import set_interpreter

    previous = set_interpreter(True)
    yield
    set_interpreter(previous)

