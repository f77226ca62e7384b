"""Episode file headers: shapes read without loading pixels, and the consistency checks the
loaders run before loading (every file's frame size, channels and action dimension agree).

    shapes = check_episodes(files, keymap, frame_size=(64, 64))   # EpisodeError naming each odd file

Re-exported by :mod:`worldmodels.episodes`, where they were first defined.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldmodels.episodes import EpisodeError, KeyMap, _action_dim, _frame_layout, _missing


@dataclass(frozen=True)
class EpisodeShape:
    """What one episode file holds, read from its ``.npy`` headers (no pixels are loaded).

    Attributes:
        path: the file.
        image_shape: the frame array's stored shape (as in the file, before the key map).
        frame: (H, W, C) of one frame after the key map, crop and resize included
            (C = 3 * frame_stack).
        steps: T, the number of frames.
        action_dim: A (actions are (T,A)); None when the file has no action array.
        stored: (H, W) of a frame as stored, before crop/resize.
    """

    path: Path
    image_shape: tuple[int, ...]
    frame: tuple[int, int, int]
    steps: int
    action_dim: int | None
    stored: tuple[int, int] | None = None


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
                arrays = {k: _npy_header(z, m)[0] for k, m in members.items()}
                raise _missing(path, km.image_key, arrays, km, "--image-key")
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
        raise _missing(path, str(km.action_key), dict.fromkeys(members, ()), km, "--action-key")
    A = None if action is None else _action_dim(*action, T, km, path)
    return EpisodeShape(path, image_shape, (*km.frame_size(H, W), C), T, A, (H, W))


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
    With a key map that crops/resizes (``size``), the stored sizes must still agree among the
    files (an odd file is named, not resized) and ``size`` must equal ``frame_size``.
    Returns (shapes of the readable files, problem lines naming file, found and expected).
    """
    shapes, problems = [], []
    for f in files:
        try:
            shapes.append(read_episode_shape(f, keymap))
        except EpisodeError as e:
            problems.append(str(e))
    resized = keymap is not None and keymap.size is not None
    if shapes:
        stored = [s.stored or s.frame[:2] for s in shapes]
        size, why = _expected(stored, None if resized else frame_size, expected_from, "frame size")
        for s, hw in zip(shapes, stored, strict=True):
            if hw != tuple(size):
                problems.append(f"{s.path}: frames (H,W,C) = {(*hw, s.frame[2])}, expected "
                                f"{(*size, s.frame[2])} ({why}); image {s.image_shape}")
    if shapes and resized and frame_size is not None and (keymap.size,) * 2 != tuple(frame_size):
        problems += [f"{s.path}: frames are brought to {keymap.size}x{keymap.size} (--size "
                     f"{keymap.size}), expected {frame_size[0]}x{frame_size[1]} ({expected_from}); "
                     f"pass --size {frame_size[0]}" for s in shapes]
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
    reasons = {p.split(": ", 1)[-1] for p in problems}
    if len(reasons) == 1 and "; pass --" in next(iter(reasons)):  # one cause with one fix (a
        # wrong key map or frame size): one line
        return EpisodeError(f"{problems[0]} (the same in {len(problems) - 1} more of {n_files} "
                            f"episode files)")
    shown = "\n  ".join(problems[:10])
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    return EpisodeError(f"{len(problems)} problems in {n_files} episode files:\n  {shown}{more}")


def check_episodes(files: list[Path], keymap: KeyMap | None = None, **expect) -> list[EpisodeShape]:
    """:func:`scan_episodes` that raises one :class:`EpisodeError` listing every problem."""
    shapes, problems = scan_episodes(files, keymap, **expect)
    if problems:
        raise problems_error(problems, len(files))
    return shapes
