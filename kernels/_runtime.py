"""When the Triton path runs: availability, interpreter mode, and the test switch.

Dispatch rule shared by every kernel in this package:

* CUDA tensors and Triton importable  -> Triton kernel;
* CPU tensors, ``TRITON_INTERPRET=1`` *and* the interpreter path is switched on
  (``set_interpreter(True)``, the ``interpret=True`` argument, or ``WM_KERNELS_INTERPRET=1``)
  -> the same Triton kernel, run by Triton's CPU interpreter (slow; meant for tests);
* otherwise -> the torch reference path.

The interpreter must be selected before Triton compiles anything: set ``TRITON_INTERPRET=1``
in the environment before the first ``import kernels.*`` (``tests/conftest.py`` does).
"""

from __future__ import annotations

import os

import torch

try:  # Triton is optional: the torch paths work without it.
    import triton  # noqa: F401

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the install
    HAS_TRITON = False

_INTERPRETER_ON = os.environ.get("WM_KERNELS_INTERPRET", "0") == "1"


def interpreting() -> bool:
    """True when Triton runs kernels with its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def set_interpreter(enabled: bool) -> bool:
    """Switch the CPU-interpreter path on/off for all kernels; returns the previous value."""
    global _INTERPRETER_ON
    previous, _INTERPRETER_ON = _INTERPRETER_ON, bool(enabled)
    return previous


def interpreter_enabled() -> bool:
    """Whether CPU tensors are sent to the Triton interpreter (needs ``TRITON_INTERPRET=1``)."""
    return _INTERPRETER_ON


def use_triton(*tensors: torch.Tensor, interpret: bool | None = None) -> bool:
    """Decide Triton vs torch reference for these tensors (see the module docstring)."""
    if not HAS_TRITON:
        return False
    if all(t.is_cuda for t in tensors) and not interpreting():
        return True
    want = _INTERPRETER_ON if interpret is None else interpret
    return bool(want) and interpreting() and all(t.device.type == "cpu" for t in tensors)
