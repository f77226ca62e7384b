"""Load libtriton before MuJoCo creates an EGL context (see ``planners/__init__``).

Imported by modules that render and then train/optimise with torch (torch.optim imports
torch._dynamo, which imports triton). Harmless when triton is absent.
"""

try:  # pragma: no cover - depends on the install
    import triton  # noqa: F401
except Exception:  # noqa: BLE001
    pass
