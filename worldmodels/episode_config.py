"""The ``episodes:`` section every command that reads episode files shares: key map, split and
frame preprocessing (torch-free, so ``--help`` stays fast).

    ep = EpisodeConfig(layout="metaworld", held_out=["door-lock"], size=None)
    km = ep.keymap(image_size=64)                 # KeyMap(image_key="observation", ..., size=64)
    files, steps = ep.split("../shared/data/robot/metaworld", "train")
    ep.resolved(64)                               # what a run records (tokenizer, world model, RLVR)

Every field may be null ("not given"): :meth:`EpisodeConfig.merged` then fills it from what the
input recorded (a tokenizer run's ``config.yaml``, a world model's ``worldmodel.json``), and
:meth:`keymap` / :meth:`split` apply the defaults named in the field docs. The flags of the
commands (``--layout``, ``--image-key``, ``--test-every``, ``--held-out``, ``--size`` ...) map
onto these fields one to one (``worldmodels/commands/_episodes.py``).

Splits: ``held_out`` (files or sub-folders, e.g. one task of a multi-task folder) when given,
else RLVR-World's sorted-index rule ``i % test_every == 0``; ``test_tail`` instead holds out the
last steps of every episode (a folder of one or two episodes, like the BAIR sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TEST_EVERY = 100  # RLVR-World's rule when neither the flag nor meta.json sets one
SMALL_TEST_SET = 30  # fewer held-out clips than this: intervals are wide, say so


@dataclass
class EpisodeConfig:
    """How episode files are read, split and preprocessed (null: recorded, else the default).

    layout: named key map: rlvr, bair, metaworld (null: rlvr); the fields below override it.
    image_key: array holding the frames (null: the layout's, e.g. image).
    action_key: array holding the actions, or "none" for image-only data (null: the layout's).
    channels_first: frames stored (T,C,H,W) instead of (T,H,W,C) (null: the layout's).
    frame_stack: RGB frames stacked along the channel axis, the last 3 channels being step t's
        (null: the layout's; Meta-World: 3).
    test_every: sorted file i is held out iff i % test_every == 0 (null: the folder's
        meta.json test_every, else 100 as RLVR-World).
    held_out: files or sub-folders (paths relative to the data folder, e.g. door-lock or
        door-lock/3.npz; the .npz may be left off) that form the test split instead of test_every.
    test_tail: hold out the last test_tail steps of every episode (train on the steps before
        them) instead of whole files: for folders of one or two episodes (the BAIR sample).
    size: square side in pixels frames are brought to (null: the tokenizer's image_size).
    crop: before resizing, "center" keeps the centred min(H,W) square (iVideoGPT), "none" resizes
        the whole frame, not keeping its aspect ratio (null: center).
    resize: false: refuse frames of another size than `size` instead of cropping and resizing
        them (null: true).
    """

    layout: str | None = None
    image_key: str | None = None
    action_key: str | None = None
    channels_first: bool | None = None
    frame_stack: int | None = None
    test_every: int | None = None
    held_out: list[str] | None = None
    test_tail: int | None = None
    size: int | None = None
    crop: str | None = None
    resize: bool | None = None

    def __post_init__(self) -> None:
        if self.layout is not None:
            self._check_layout(self.layout)
        for name in ("frame_stack", "test_every", "test_tail", "size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"episodes.{name} (--{name.replace('_', '-')}) must be an integer "
                                 f">= 1 or null, got {v!r}")
        if self.crop is not None and self.crop not in ("center", "none"):
            raise ValueError(f"episodes.crop (--crop) must be 'center' or 'none', got {self.crop!r}")
        if self.held_out is not None:
            self.held_out = [str(h).strip().strip("/") for h in self.held_out if str(h).strip()]
        splits = [n for n in ("held_out", "test_tail") if getattr(self, n)]
        if len(splits) > 1 or (splits and self.test_every is not None):
            raise ValueError("episodes: give one split rule: test_every (--test-every), held_out "
                             "(--held-out) or test_tail (--test-tail)")
        for key in ("image_key", "action_key"):
            if getattr(self, key) is not None and not str(getattr(self, key)).strip():
                raise ValueError(f"episodes.{key} must be a non-empty array name (or null)")

    @staticmethod
    def _check_layout(name: str) -> None:
        from worldmodels.episodes import LAYOUTS

        if name not in LAYOUTS:
            raise ValueError(f"episodes.layout (--layout) {name!r}: unknown; known layouts: "
                             f"{', '.join(LAYOUTS)}")

    # ----- defaults ------------------------------------------------------------------------
    def merged(self, recorded: dict | None) -> EpisodeConfig:
        """This section with its null fields taken from ``recorded`` (a recorded section's
        dict; unknown keys ignored). A recorded split rule is not taken when this one gives
        another (e.g. --held-out replaces a recorded test_every)."""
        rec = {k: v for k, v in (recorded or {}).items()
               if k in {f.name for f in dataclasses.fields(self)} and v is not None}
        if any(getattr(self, n) is not None for n in ("test_every", "held_out", "test_tail")):
            for n in ("test_every", "held_out", "test_tail"):
                rec.pop(n, None)
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if "layout" in given and given["layout"] != rec.get("layout"):  # another layout: its keys
            for k in ("image_key", "action_key", "channels_first", "frame_stack"):
                rec.pop(k, None)
        return EpisodeConfig(**{**rec, **given})

    def is_empty(self) -> bool:
        return all(v is None for v in dataclasses.asdict(self).values())

    def keymap(self, image_size: int | None = None):
        """The :class:`~worldmodels.episodes.KeyMap`: the layout's, with this section's fields;
        frames brought to ``size`` (else ``image_size``, the consumer's) unless ``resize`` is false."""
        from worldmodels.episodes import LAYOUTS

        km = LAYOUTS[self.layout or "rlvr"]
        changes = {"image_key": self.image_key, "channels_first": self.channels_first,
                   "frame_stack": self.frame_stack}
        km = dataclasses.replace(km, **{k: v for k, v in changes.items() if v is not None})
        if self.action_key is not None:
            km = dataclasses.replace(km, action_key=None if self.action_key == "none" else self.action_key)
        size = self.size or image_size
        if self.resize is False:
            size = None
        return dataclasses.replace(km, size=size, crop=self.crop or "center")

    def resolved(self, image_size: int | None = None) -> dict:
        """The section as a run records it: the layout's key map spelled out, the frame size
        used; the split rule as given (null: the folder's meta.json rule, decided per folder)."""
        km = self.keymap(image_size)
        return {"layout": self.layout or "rlvr", "image_key": km.image_key,
                "action_key": km.action_key or "none", "channels_first": km.channels_first,
                "frame_stack": km.frame_stack, "test_every": self.test_every,
                "held_out": self.held_out, "test_tail": self.test_tail,
                "size": self.size or image_size, "crop": km.crop,
                "resize": self.resize if self.resize is not None else True}

    # ----- split ---------------------------------------------------------------------------
    def split(self, root: str | Path, split: str) -> tuple[list[Path], slice | None]:
        """(files, steps) of ``split`` ("train", "test" or "all") of the folder ``root``:
        ``steps`` is the slice of every episode's steps to use (``test_tail``), else None.
        Raises EpisodeError (no episodes; a held_out entry that matches no file; an empty split)."""
        from worldmodels.episodes import EpisodeError, episode_files, read_meta, split_files

        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        files = episode_files(root)
        if split == "all":
            return files, None
        if self.test_tail:
            return files, (slice(None, -self.test_tail) if split == "train"
                           else slice(-self.test_tail, None))
        if self.held_out:
            test = held_out_files(root, files, self.held_out)
            chosen = test if split == "test" else [f for f in files if f not in set(test)]
            rule = f"--held-out {','.join(self.held_out)}"
        else:
            every = self.test_every or (int(read_meta(root).get("test_every", DEFAULT_TEST_EVERY))
                                        if Path(root).is_dir() else DEFAULT_TEST_EVERY)
            chosen = split_files(files, split, every)
            rule = f"test_every={every} (--test-every)"
        if not chosen:
            raise EpisodeError(f"{root}: the {split} split is empty ({len(files)} episode file(s), "
                               f"{rule}); choose files with --held-out, or hold out the last steps "
                               f"of each episode with --test-tail N")
        return chosen, None


def held_out_files(root: str | Path, files: list[Path], entries: list[str]) -> list[Path]:
    """The ``files`` that ``entries`` name: a path relative to ``root`` (with or without
    ``.npz``), or a sub-folder holding them. An entry naming no file raises EpisodeError."""
    from worldmodels.episodes import EpisodeError

    root = Path(root)
    rel = {f: (f.relative_to(root).as_posix() if root.is_dir() else f.name) for f in files}
    out = []
    for e in entries:
        hits = [f for f, r in rel.items()
                if r == e or r == f"{e}.npz" or r.startswith(e + "/") or f.stem == e]
        if not hits:
            some = ", ".join(sorted(rel.values())[:5])
            raise EpisodeError(f"{root}: --held-out entry {e!r} names no episode file or sub-folder "
                               f"(files are named relative to the folder, e.g. {some})")
        out += [f for f in hits if f not in out]
    return sorted(out)


def recorded_episodes(directory: str | Path) -> tuple[dict | None, str | None]:
    """(episodes section, data folder) a tokenizer run recorded in ``<dir>/config.yaml`` or a
    world model in ``<dir>/worldmodel.json``; (None, None) when neither records one."""
    import json

    import yaml

    d = Path(directory)
    if (d / "worldmodel.json").is_file():
        try:
            meta = json.loads((d / "worldmodel.json").read_text())
        except json.JSONDecodeError:
            meta = {}
        if isinstance(meta, dict) and isinstance(meta.get("episodes"), dict):
            return meta["episodes"], meta.get("data_root")
    if (d / "config.yaml").is_file():
        try:
            rec = yaml.safe_load((d / "config.yaml").read_text()) or {}
        except yaml.YAMLError:
            rec = {}
        if isinstance(rec, dict) and isinstance(rec.get("episodes"), dict):
            return rec["episodes"], rec.get("data")
        if isinstance(rec, dict) and isinstance(rec.get("layout"), str):  # before the section
            return {"layout": rec["layout"]}, rec.get("data")
    return None, None
