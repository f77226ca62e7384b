"""Frame preprocessing for foreign episodes: centre-crop to a square, resize to the tokenizer's side.

    frames = crop_resize(image, size=256, crop="center")   # (T,256,320,3) uint8 -> (T,256,256,3)
    describe((256, 320), 64, "center")   # '256x320 -> centre crop 256x256 -> resize 64x64 (antialiased)'

As iVideoGPT's evaluation loader does (``ivideogpt/data/simple_dataloader.py``: ``center_crop`` to
the shorter side, then torchvision ``resize`` to ``[S, S]``, bilinear with antialiasing): the crop
keeps the central ``min(H,W)`` square (offsets ``(H-s)//2``, ``(W-s)//2``), the resize is
``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``, the
kernel torchvision's tensor resize uses. ``crop="none"`` resizes the whole frame (the aspect ratio
is not kept; iVideoGPT's loader does this for datasets other than RoboNet). Frames stay uint8:
the resized values are rounded, at most half a grey level from the float result.
"""

from __future__ import annotations

import numpy as np

CROPS = ("center", "none")


def crop_box(height: int, width: int, crop: str) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the region kept before resizing: the centred ``min(H,W)`` square for
    ``crop="center"``, the whole frame for ``"none"``."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    if crop == "none":
        return 0, 0, height, width
    s = min(height, width)
    return (height - s) // 2, (width - s) // 2, s, s


def describe(hw: tuple[int, int], size: int | None, crop: str) -> str:
    """One line saying what happens to (H,W) frames: crop and resize steps, or 'as stored'."""
    H, W = hw
    if size is None or (H, W) == (size, size):
        return f"{H}x{W} (as stored)"
    top, left, h, w = crop_box(H, W, crop)
    steps = [f"{H}x{W}"]
    if (h, w) != (H, W):
        steps.append(f"centre crop {h}x{w} (offset {top},{left})")
    if (h, w) != (size, size):
        steps.append(f"resize {size}x{size} (bilinear, antialiased)")
    return " -> ".join(steps)


def crop_resize(image: np.ndarray, size: int, crop: str = "center", chunk: int = 64) -> np.ndarray:
    """(T,H,W,3) uint8 frames -> (T,size,size,3) uint8: crop (see :func:`crop_box`), then an
    antialiased bilinear resize when the kept region is not already ``size`` x ``size``.

    Raises ValueError for a non-(T,H,W,3) array, ``size < 1`` or an unknown ``crop``."""
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"frames must be (T,H,W,3), got {image.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    T, H, W, _ = image.shape
    top, left, h, w = crop_box(H, W, crop)
    image = image[:, top : top + h, left : left + w]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    import torch
    import torch.nn.functional as F

    out = np.empty((T, size, size, 3), np.uint8)
    for i in range(0, T, chunk):
        x = torch.from_numpy(np.ascontiguousarray(image[i : i + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out
