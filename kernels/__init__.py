"""Fused kernels (Triton) with PyTorch reference paths.

A leaf package: it imports nothing from worldmodels. Deliberately no ``__version__`` here:
transformers probes an unrelated PyPI package also named ``kernels`` by its version.
"""
