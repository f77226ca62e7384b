"""JSON / JSONL record files (text-game and web datasets), read with every problem named.

    for line_no, rec in iter_records("data/bytesized32/train.jsonl.gz",
                                     {"state": dict, "action": str, "step": int}):
        ...

``.jsonl`` / ``.jsonl.gz``: one JSON object per line (blank lines are skipped; ``line_no``
counts from 1). ``.json``: one JSON array of objects (``line_no`` is then the record's index
from 0, reported as "record i"). ``required`` maps a field name to the type (or tuple of
types) its value must have; ``bool`` never passes for ``int`` or ``float``, and ``int`` does
pass for ``float``. Every problem raises :class:`RecordError` naming the file and the line
(or record), and for a field its name, what was found and what was expected.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

FieldTypes = Mapping[str, type | tuple[type, ...]]


class RecordError(ValueError):
    """A record file is missing, corrupt, or holds a record without the required fields."""


def _type_names(t: type | tuple[type, ...]) -> str:
    return " or ".join(x.__name__ for x in (t if isinstance(t, tuple) else (t,)))


def _fits(value, t: type | tuple[type, ...]) -> bool:
    types = t if isinstance(t, tuple) else (t,)
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def check_record(rec, required: FieldTypes, where: str) -> dict:
    """``rec`` itself when it is a JSON object with every ``required`` field of the right
    type; else :class:`RecordError` starting with ``where`` (e.g. ``"f.jsonl:12"``)."""
    if not isinstance(rec, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    for name, t in required.items():
        if name not in rec:
            raise RecordError(f"{where}: missing field '{name}' (expected {_type_names(t)}; "
                              f"the record has {sorted(rec)})")
        if not _fits(rec[name], t):
            raise RecordError(f"{where}: field '{name}' is {type(rec[name]).__name__} "
                              f"{_short(rec[name])}, expected {_type_names(t)}")
    return rec


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def iter_records(path: str | Path, required: FieldTypes | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_no, record)`` of a ``.jsonl`` / ``.jsonl.gz`` / ``.json`` file, checked
    against ``required`` (field -> type); see the module docstring. Raises RecordError."""
    path, required = Path(path), required or {}
    if not path.is_file():
        raise RecordError(f"{path}: no such record file")
    name = path.name.lower()
    if name.endswith(".json"):
        yield from _json_array(path, required)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        yield from _json_lines(path, required, gz=name.endswith(".gz"))
    else:
        raise RecordError(f"{path}: unknown record file type; expected .jsonl, .jsonl.gz or .json")


def read_records(path: str | Path, required: FieldTypes | None = None) -> list[dict]:
    """Every record of :func:`iter_records`, as a list."""
    return [rec for _, rec in iter_records(path, required)]


def _json_lines(path: Path, required: FieldTypes, gz: bool) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if gz else open
    line_no = 0
    try:
        with opener(path, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                rec = _parse_line(raw, path, line_no, required)
                if rec is not None:  # None: a blank line
                    yield line_no, rec
    except (EOFError, OSError, zlib.error) as e:
        raise RecordError(f"{path}: unreadable after line {line_no} (corrupt or truncated? "
                          f"{type(e).__name__}: {e})") from e


def _parse_line(raw: bytes, path: Path, line_no: int, required: FieldTypes) -> dict | None:
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}:{line_no}: not UTF-8 text ({e})") from e
    if not line:
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}:{line_no}: not valid JSON ({e.msg}: column {e.colno})") from e
    return check_record(rec, required, f"{path}:{line_no}")


def _json_array(path: Path, required: FieldTypes) -> Iterator[tuple[int, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"{path}:{e.lineno}" if isinstance(e, json.JSONDecodeError) else str(path)
        raise RecordError(f"{where}: not valid JSON ({e})") from e
    if not isinstance(data, list):
        raise RecordError(f"{path}: expected a JSON array of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield i, check_record(rec, required, f"{path}: record {i}")
