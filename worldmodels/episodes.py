"""Episode files: one ``.npz`` per episode, and the loaders that turn them into clips.

Our own episodes (``wm data build robot``) and RLVR-World's Open X-Embodiment conversions share
the keys ``image`` (T,H,W,3 uint8) and ``action`` (T,A float32); ours add ``state`` (T,S),
``success`` (T,) and ``task``. Other layouts load through a :class:`KeyMap`::

    # Meta-World demos: channels-first, three RGB frames stacked along channels
    km = KeyMap(image_key="observation", channels_first=True, frame_stack=3)
    ep = load_episode("../shared/data/robot/metaworld/door-lock/0.npz", km)

Train/test split follows RLVR-World: sort the files, file ``i`` is test iff
``i % test_every == 0`` (RLVR-World uses 100; our small builds record theirs in meta.json).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldmodels.atomic import atomic_write

META_FILENAME = "meta.json"


class EpisodeError(ValueError):
    """An episode file is missing, corrupt, or not in the expected layout."""


@dataclass(frozen=True)
class KeyMap:
    """How to read images and actions out of an episode ``.npz``.

    Attributes:
        image_key: array holding the frames.
        action_key: array holding the actions; ``None`` for image-only data.
        channels_first: frames are stored (T,C,H,W) instead of (T,H,W,C).
        frame_stack: number of RGB frames stacked along the channel axis (Meta-World: 3);
            the most recent one (the last 3 channels) is the frame of step t.
        require_actions: raise if ``action_key`` is absent (otherwise actions are ``None``).
    """

    image_key: str = "image"
    action_key: str | None = "action"
    channels_first: bool = False
    frame_stack: int = 1
    require_actions: bool = False

    def __post_init__(self) -> None:
        if self.frame_stack < 1:
            raise ValueError(f"KeyMap.frame_stack must be >= 1, got {self.frame_stack}")


# Named layouts for the CLI's ``--layout`` flag.
LAYOUTS: dict[str, KeyMap] = {
    "rlvr": KeyMap(),  # ours and RLVR-World's RT-1 conversions
    "bair": KeyMap(),  # iVideoGPT's BAIR sample: same keys, int64 pixels
    "metaworld": KeyMap(image_key="observation", channels_first=True, frame_stack=3),
}


@dataclass
class Episode:
    """One episode in memory. ``image`` is always (T,H,W,3) uint8."""

    path: Path
    image: np.ndarray
    action: np.ndarray | None
    state: np.ndarray | None = None
    success: np.ndarray | None = None
    task: str | None = None

    def __len__(self) -> int:
        return int(self.image.shape[0])


def _to_uint8_frames(arr: np.ndarray, km: KeyMap, path: Path) -> np.ndarray:
    if arr.ndim != 4:
        raise EpisodeError(
            f"{path}: '{km.image_key}' has shape {arr.shape}; expected 4 dims "
            f"({'T,C,H,W' if km.channels_first else 'T,H,W,C'})"
        )
    if km.channels_first:
        arr = np.moveaxis(arr, 1, -1)
    channels = arr.shape[-1]
    if channels != 3 * km.frame_stack:
        raise EpisodeError(
            f"{path}: '{km.image_key}' has {channels} channels; expected {3 * km.frame_stack} "
            f"(3 x frame_stack={km.frame_stack}); for stacked frames pass --frame-stack, "
            f"for (T,C,H,W) pass --channels-first"
        )
    arr = arr[..., -3:]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.isnan(arr).any() or arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise EpisodeError(f"{path}: float '{km.image_key}' must lie in [0,1]")
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise EpisodeError(f"{path}: integer '{km.image_key}' must lie in 0..255")
        return arr.astype(np.uint8)
    raise EpisodeError(f"{path}: '{km.image_key}' has dtype {arr.dtype}; expected uint8 or float")


def load_episode(path: str | Path, keymap: KeyMap | None = None) -> Episode:
    """Read and validate one episode; every problem raises :class:`EpisodeError` naming the file."""
    km = keymap or KeyMap()
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"{path}: no such episode file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        raise EpisodeError(f"{path}: corrupt or truncated npz ({type(e).__name__}: {e})") from e
    if km.image_key not in data:
        raise EpisodeError(f"{path}: missing key '{km.image_key}' (has {sorted(data)})")
    image = _to_uint8_frames(data[km.image_key], km, path)
    action = None
    if km.action_key is not None and km.action_key in data:
        action = np.asarray(data[km.action_key])
        if action.ndim == 1:
            action = action[:, None]
        if action.ndim != 2 or not np.issubdtype(action.dtype, np.number):
            raise EpisodeError(
                f"{path}: '{km.action_key}' has shape {action.shape} dtype {action.dtype}; "
                f"expected (T,A) numbers"
            )
        if action.shape[0] != image.shape[0]:
            raise EpisodeError(
                f"{path}: {image.shape[0]} frames but {action.shape[0]} actions; "
                f"'{km.image_key}' and '{km.action_key}' must have the same T"
            )
        action = action.astype(np.float32)
        if not np.isfinite(action).all():
            raise EpisodeError(f"{path}: '{km.action_key}' contains NaN or inf")
    elif km.require_actions:
        raise EpisodeError(f"{path}: missing key '{km.action_key}' (has {sorted(data)})")
    state = _per_step(data, "state", image.shape[0], path, ndim=2)
    success = _per_step(data, "success", image.shape[0], path, ndim=1)
    task = data.get("task")
    return Episode(
        path=path,
        image=image,
        action=action,
        state=None if state is None else state.astype(np.float32),
        success=None if success is None else success.astype(bool),
        task=None if task is None else str(task),
    )


def _per_step(data: dict, key: str, T: int, path: Path, ndim: int) -> np.ndarray | None:
    """Optional per-step array ``key``: numeric, ``ndim`` dims, T rows (else EpisodeError)."""
    arr = data.get(key)
    if arr is None:
        return None
    if arr.ndim != ndim or arr.shape[0] != T or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        shape = "(T,)" if ndim == 1 else "(T,S)"
        raise EpisodeError(
            f"{path}: '{key}' has shape {arr.shape} dtype {arr.dtype}; expected {shape} numbers "
            f"with T={T} (the number of frames)"
        )
    return arr


def save_episode(path: str | Path, image: np.ndarray, action: np.ndarray, **extra: np.ndarray) -> None:
    """Write one episode atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise EpisodeError(f"{path}: image must be (T,H,W,3) uint8, got {image.shape} {image.dtype}")
    if action.ndim != 2 or action.shape[0] != image.shape[0]:
        raise EpisodeError(f"{path}: action must be (T,A) with T={image.shape[0]}, got {action.shape}")
    atomic_write(path, lambda f: np.savez_compressed(
        f, image=image, action=action.astype(np.float32), **extra))


def episode_files(root: str | Path) -> list[Path]:
    """Sorted ``*.npz`` files under ``root`` (recursively); a clear error if there are none."""
    root = Path(root)
    if root.is_file() and root.suffix == ".npz":
        return [root]
    if not root.is_dir():
        raise EpisodeError(f"{root}: no such data folder (build one with `wm data build robot`)")
    files = sorted(p for p in root.rglob("*.npz") if not p.name.startswith(".tmp-"))
    if not files:
        raise EpisodeError(f"{root}: no .npz episodes found (build some with `wm data build robot`)")
    return files


def read_meta(root: str | Path) -> dict:
    """``meta.json`` of a dataset folder, or ``{}`` for foreign data without one."""
    p = Path(root) / META_FILENAME
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise EpisodeError(f"{p}: not valid JSON ({e})") from e


def split_files(files: list[Path], split: str, test_every: int = 100) -> list[Path]:
    """RLVR-World's deterministic split: sorted index ``i % test_every == 0`` -> test."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if test_every < 1:
        raise ValueError(f"test_every must be >= 1, got {test_every}")
    files = sorted(files)
    if split == "all":
        return files
    want_test = split == "test"
    return [f for i, f in enumerate(files) if (i % test_every == 0) == want_test]


def dataset_split(root: str | Path, split: str, test_every: int | None = None) -> list[Path]:
    """Files of one split of a dataset folder; ``test_every`` defaults to meta.json's, else 100."""
    if test_every is None:
        test_every = int(read_meta(root).get("test_every", 100))
    return split_files(episode_files(root), split, test_every)


def keymap_from_dict(d: dict | None) -> KeyMap:
    return KeyMap(**(d or {}))


def keymap_to_dict(km: KeyMap) -> dict:
    return dataclasses.asdict(km)
