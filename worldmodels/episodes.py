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
        raise EpisodeError(
            f"{path}: '{km.image_key}' of shape {shape} has {C} channels; expected "
            f"{3 * km.frame_stack} (3 x frame_stack={km.frame_stack}); for stacked frames pass "
            f"--frame-stack, for (T,C,H,W) pass --channels-first"
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
    if km.image_key not in data:
        raise EpisodeError(f"{path}: missing key '{km.image_key}' (has {sorted(data)})")
    image = _to_uint8_frames(data[km.image_key], km, path)
    action = None
    if km.action_key is not None and km.action_key in data:
        action = np.asarray(data[km.action_key])
        _action_dim(action.shape, action.dtype, image.shape[0], km, path)
        action = action.reshape(action.shape[0], -1).astype(np.float32)
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


# ----------------------------------------------------------------------------- headers
@dataclass(frozen=True)
class EpisodeShape:
    """What one episode file holds, read from its ``.npy`` headers (no pixels are loaded).

    Attributes:
        path: the file.
        image_shape: the frame array's stored shape (as in the file, before the key map).
        frame: (H, W, C) of one frame after the key map (C = 3 * frame_stack).
        steps: T, the number of frames.
        action_dim: A (actions are (T,A)); None when the file has no action array.
    """

    path: Path
    image_shape: tuple[int, ...]
    frame: tuple[int, int, int]
    steps: int
    action_dim: int | None


def _npy_header(z: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one ``.npy`` member of an open npz, from its header only."""
    with z.open(member) as f:
        version = np.lib.format.read_magic(f)
        try:
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
        except ValueError:  # an unusual header (format 3.0 with non-latin names): read it all
            with z.open(member) as g:
                arr = np.lib.format.read_array(g, allow_pickle=False)
            shape, dtype = arr.shape, arr.dtype
    return tuple(int(n) for n in shape), np.dtype(dtype)


def read_episode_shape(path: str | Path, keymap: KeyMap | None = None) -> EpisodeShape:
    """Shapes of one episode file from its npz headers: cheap (no pixel is decompressed).

    Checks what :func:`load_episode` checks about shapes and dtypes (frame dims, channel
    count, pixel dtype, action shape, as many actions as frames); pixel ranges and NaN need
    the data and stay with :func:`load_episode`. Raises :class:`EpisodeError` naming the file.
    """
    km = keymap or KeyMap()
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"{path}: no such episode file")
    try:
        with zipfile.ZipFile(path) as z:
            members = {n[: -len(".npy")]: n for n in z.namelist() if n.endswith(".npy")}
            if km.image_key not in members:
                raise EpisodeError(f"{path}: missing key '{km.image_key}' (has {sorted(members)})")
            image_shape, image_dtype = _npy_header(z, members[km.image_key])
            action = None
            if km.action_key is not None and km.action_key in members:
                action = _npy_header(z, members[km.action_key])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        if isinstance(e, EpisodeError):
            raise
        raise EpisodeError(f"{path}: corrupt or truncated npz ({type(e).__name__}: {e})") from e
    T, H, W, C = _frame_layout(image_shape, image_dtype, km, path)
    if action is None and km.require_actions:
        raise EpisodeError(f"{path}: missing key '{km.action_key}' (has {sorted(members)})")
    A = None if action is None else _action_dim(*action, T, km, path)
    return EpisodeShape(path, image_shape, (H, W, C), T, A)


def _expected(values: list, given, given_from: str, what: str) -> tuple:
    """(expected value, why): ``given`` if set, else the most common of ``values`` (ties: the
    earliest file's)."""
    if given is not None:
        return given, given_from
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts, key=lambda v: (counts[v], -values.index(v)))
    tie = " (a tie: the first file's)" if list(counts.values()).count(counts[best]) > 1 else ""
    return best, f"the {what} of {counts[best]} of {len(values)} files{tie}"


def scan_episodes(files: list[Path], keymap: KeyMap | None = None, *,
                  frame_size: tuple[int, int] | None = None, action_dim: int | None = None,
                  expected_from: str = "as configured") -> tuple[list[EpisodeShape], list[str]]:
    """Headers of every file, and one line per file that is unreadable or does not fit.

    Every frame must be (H,W,C) and every action A-dimensional, the same for all files:
    ``frame_size`` (H,W) / ``action_dim`` when given (``expected_from`` says where they come
    from, e.g. "the tokenizer's image_size"), otherwise the most common value among the
    files (ties: the earliest file's). The channel count C always comes from the key map.
    Returns (shapes of the readable files, problem lines naming file, found and expected).
    """
    shapes, problems = [], []
    for f in files:
        try:
            shapes.append(read_episode_shape(f, keymap))
        except EpisodeError as e:
            problems.append(str(e))
    if shapes:
        size, why = _expected([s.frame[:2] for s in shapes], frame_size, expected_from, "frame size")
        for s in shapes:
            if s.frame[:2] != tuple(size):
                problems.append(f"{s.path}: frames (H,W,C) = {s.frame}, expected "
                                f"{(*size, s.frame[2])} ({why}); image {s.image_shape}")
    with_actions = [s for s in shapes if s.action_dim is not None]
    if with_actions:
        dim, why = _expected([s.action_dim for s in with_actions], action_dim, expected_from,
                             "action dim")
        for s in with_actions:
            if s.action_dim != dim:
                problems.append(f"{s.path}: actions (T,A) = ({s.steps}, {s.action_dim}), "
                                f"expected ({s.steps}, {dim}) ({why})")
    return shapes, problems


def problems_error(problems: list[str], n_files: int) -> EpisodeError:
    """One :class:`EpisodeError` listing ``problems`` (at most 10 lines) of ``n_files`` files."""
    if len(problems) == 1:
        return EpisodeError(problems[0])
    shown = "\n  ".join(problems[:10])
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    return EpisodeError(f"{len(problems)} problems in {n_files} episode files:\n  {shown}{more}")


def check_episodes(files: list[Path], keymap: KeyMap | None = None, **expect) -> list[EpisodeShape]:
    """:func:`scan_episodes` that raises one :class:`EpisodeError` listing every problem."""
    shapes, problems = scan_episodes(files, keymap, **expect)
    if problems:
        raise problems_error(problems, len(files))
    return shapes


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
