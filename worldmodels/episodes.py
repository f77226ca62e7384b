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
        size: None (frames as stored), or the square side frames are brought to when loaded
            (``worldmodels.preprocess.crop_resize``: crop, then antialiased resize).
        crop: before resizing, "center" keeps the centred min(H,W) square; "none" resizes the
            whole frame (the aspect ratio is not kept).
    """

    image_key: str = "image"
    action_key: str | None = "action"
    channels_first: bool = False
    frame_stack: int = 1
    require_actions: bool = False
    size: int | None = None
    crop: str = "center"

    def __post_init__(self) -> None:
        if self.frame_stack < 1:
            raise ValueError(f"KeyMap.frame_stack must be >= 1, got {self.frame_stack}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"KeyMap.size must be >= 1 or None, got {self.size}")
        if self.crop not in ("center", "none"):
            raise ValueError(f"KeyMap.crop must be 'center' or 'none', got {self.crop!r}")

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """(H,W) of a loaded frame whose stored frames are ``height`` x ``width``."""
        return (height, width) if self.size is None else (self.size, self.size)


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


def missing_key_hint(arrays: dict[str, tuple], km: KeyMap) -> str:
    """What to pass when ``km.image_key`` is not among ``arrays`` ({name: shape}): a named
    ``--layout`` whose image key is there, else ``--image-key`` with the 4-dim arrays found."""
    for name, other in LAYOUTS.items():
        if other.image_key in arrays and other.image_key != km.image_key:
            return f"pass --layout {name}"
    frames = [k for k, shape in arrays.items() if len(shape) == 4]
    if frames:
        return "pass --image-key " + " or --image-key ".join(frames)
    return "pass --image-key NAME (no array here has 4 dims (T,H,W,C))"


def _missing(path: Path, key: str, arrays: dict[str, tuple], km: KeyMap, flag: str) -> EpisodeError:
    hint = missing_key_hint(arrays, km) if key == km.image_key else (
        f"pass {flag} NAME, or --action-key none for image-only data")
    return EpisodeError(f"{path}: missing key '{key}' (has {sorted(arrays)}); {hint}")


def _channel_hint(shape: tuple[int, ...], km: KeyMap) -> str:
    """The flags that read frames of ``shape`` whose channel count does not fit ``km``."""
    last, second = shape[-1], shape[1]
    if km.channels_first and second % 3 == 0:
        return f"pass --frame-stack {second // 3}"
    if not km.channels_first and last % 3 == 0:
        return f"pass --frame-stack {last // 3}"
    if not km.channels_first and second % 3 == 0 and second <= 48:
        return f"pass --channels-first --frame-stack {second // 3}"
    if km.channels_first and last % 3 == 0:
        return f"pass --channels-last --frame-stack {last // 3}"
    return "for stacked frames pass --frame-stack, for (T,C,H,W) pass --channels-first"


def _frame_layout(shape: tuple, dtype: np.dtype, km: KeyMap, path: Path) -> tuple[int, ...]:
    """(T,H,W,C) of a stored frame array of ``shape``/``dtype`` read through ``km``.

    Checks what the array's header tells: 4 dims, ``3 * frame_stack`` channels and a pixel
    dtype (uint8, integer or float); raises :class:`EpisodeError` naming ``path`` otherwise.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 4:
        raise EpisodeError(
            f"{path}: '{km.image_key}' has shape {shape}; expected 4 dims "
            f"({'T,C,H,W' if km.channels_first else 'T,H,W,C'})"
        )
    T, H, W, C = (shape[0], shape[2], shape[3], shape[1]) if km.channels_first else shape
    if C != 3 * km.frame_stack:
        hint = _channel_hint(shape, km)
        raise EpisodeError(
            f"{path}: '{km.image_key}' of shape {shape} has {C} channels; expected "
            f"{3 * km.frame_stack} (3 x frame_stack={km.frame_stack}); {hint}"
        )
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise EpisodeError(f"{path}: '{km.image_key}' has dtype {dtype}; expected uint8 or float")
    return T, H, W, C


def _action_dim(shape: tuple, dtype: np.dtype, T: int, km: KeyMap, path: Path) -> int:
    """A of a stored action array of ``shape`` ((T,) counts as (T,1)); checks numbers and T rows."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 1:
        shape = (shape[0], 1)
    if len(shape) != 2 or not np.issubdtype(dtype, np.number):
        raise EpisodeError(
            f"{path}: '{km.action_key}' has shape {shape} dtype {dtype}; expected (T,A) numbers"
        )
    if shape[0] != T:
        raise EpisodeError(
            f"{path}: {T} frames but {shape[0]} actions; "
            f"'{km.image_key}' and '{km.action_key}' must have the same T"
        )
    return shape[1]


def _to_uint8_frames(arr: np.ndarray, km: KeyMap, path: Path) -> np.ndarray:
    _frame_layout(arr.shape, arr.dtype, km, path)
    if km.channels_first:
        arr = np.moveaxis(arr, 1, -1)
    arr = arr[..., -3:]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.isnan(arr).any() or arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise EpisodeError(f"{path}: float '{km.image_key}' must lie in [0,1]")
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise EpisodeError(f"{path}: integer '{km.image_key}' must lie in 0..255")
    return arr.astype(np.uint8)


def load_episode(path: str | Path, keymap: KeyMap | None = None) -> Episode:
    """Read and validate one episode; every problem raises :class:`EpisodeError` naming the file."""
    km = keymap or KeyMap()
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"{path}: no such episode file")
    if not zipfile.is_zipfile(path):
        raise EpisodeError(f"{path}: corrupt or truncated npz (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        raise EpisodeError(f"{path}: corrupt or truncated npz ({type(e).__name__}: {e})") from e
    arrays = {k: v.shape for k, v in data.items()}
    if km.image_key not in data:
        raise _missing(path, km.image_key, arrays, km, "--image-key")
    image = _to_uint8_frames(data[km.image_key], km, path)
    if km.size is not None:
        from worldmodels.preprocess import crop_resize

        image = crop_resize(image, km.size, km.crop)
    action = None
    if km.action_key is not None and km.action_key in data:
        action = np.asarray(data[km.action_key])
        _action_dim(action.shape, action.dtype, image.shape[0], km, path)
        action = action.reshape(action.shape[0], -1).astype(np.float32)
        if not np.isfinite(action).all():
            raise EpisodeError(f"{path}: '{km.action_key}' contains NaN or inf")
    elif km.require_actions:
        raise _missing(path, str(km.action_key), arrays, km, "--action-key")
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
    """``meta.json`` of a dataset folder, or ``{}`` for foreign data without one.

    It must be a JSON object; the fields the loaders use (``test_every``, ``image_size``,
    ``episode_len``) must be positive integers when present. Anything else
    raises :class:`EpisodeError` naming the file and the field.
    """
    p = Path(root) / META_FILENAME
    if not p.is_file():
        return {}
    try:
        meta = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EpisodeError(f"{p}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise EpisodeError(f"{p}: expected a JSON object, got {type(meta).__name__}")
    for key in ("test_every", "image_size", "episode_len"):
        v = meta.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise EpisodeError(f"{p}: field '{key}' is {v!r}; expected a positive integer")
    return meta


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


# the header checks live in episode_headers.py (they use the helpers above); importable from here
_HEADERS = ("EpisodeShape", "check_episodes", "problems_error", "read_episode_shape", "scan_episodes")


def __getattr__(name: str):
    if name in _HEADERS:
        from worldmodels import episode_headers

        return getattr(episode_headers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
