"""Fused kernels (Triton) with PyTorch reference paths.

    from kernels.attention import attention, register_with_transformers
    from kernels.vq import nearest_code, quantize

A leaf package: it imports nothing from worldmodels. Deliberately no ``__version__`` here:
transformers probes an unrelated PyPI package also named ``kernels`` by its version.
Dispatch rules and design: docs/kernels.md.
"""


def set_interpreter(enabled: bool) -> bool:
    """Send CPU tensors to the Triton kernels via Triton's interpreter (needs
    ``TRITON_INTERPRET=1`` before Triton is imported; tests only). Returns the previous value."""
    from kernels._runtime import set_interpreter as _set

    return _set(enabled)
