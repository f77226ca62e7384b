"""Load triton before any MuJoCo EGL context (see planners/__init__): under pytest the test
folder ``tests/planners`` can shadow the ``planners`` package as a namespace package, so its
``__init__`` may not run."""

try:
    import triton  # noqa: F401
except Exception:  # noqa: BLE001
    pass
