"""JSON / JSONL record files: every problem names the file, the line (or record) and the field."""

import gzip
import json

import pytest

from worldmodels.records import RecordError, iter_records, read_records

REQ = {"state": dict, "action": str, "step": int, "score": float}


def rec(**over):
    r = {"state": {"room": "kitchen"}, "action": "open door", "step": 3, "score": 0.5}
    r.update(over)
    return r


def write_lines(path, lines):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz"])
def test_valid_lines_with_their_numbers(tmp_path, name):
    p = write_lines(tmp_path / name, [json.dumps(rec()), "", json.dumps(rec(step=4, score=1))])
    got = list(iter_records(p, REQ))
    assert [n for n, _ in got] == [1, 3]  # the blank line 2 is skipped, numbering is the file's
    assert got[1][1]["step"] == 4 and got[1][1]["score"] == 1  # an int passes for a float
    assert read_records(p) == [rec(), rec(step=4, score=1)]


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz"])
def test_corrupt_line_names_file_and_line(tmp_path, name):
    p = write_lines(tmp_path / name, [json.dumps(rec()), json.dumps(rec()), '{"state": {}, "act'])
    with pytest.raises(RecordError, match=rf"{name}:3: not valid JSON \(Unterminated string starting at: column 15\)"):
        read_records(p, REQ)


@pytest.mark.parametrize("bad, match", [
    (rec(action=None), r"d.jsonl:2: field 'action' is NoneType null, expected str"),
    ({k: v for k, v in rec().items() if k != "step"},
     r"d.jsonl:2: missing field 'step' \(expected int; the record has \['action', 'score', 'state'\]\)"),
    (rec(step=True), r"d.jsonl:2: field 'step' is bool true, expected int"),
    (rec(step=2.5), r"d.jsonl:2: field 'step' is float 2.5, expected int"),
    (rec(score="high"), r"d.jsonl:2: field 'score' is str \"high\", expected float"),
    ([1, 2], r"d.jsonl:2: expected a JSON object, got list"),
])
def test_missing_or_mistyped_field_names_file_line_and_field(tmp_path, bad, match):
    p = write_lines(tmp_path / "d.jsonl", [json.dumps(rec()), json.dumps(bad)])
    it = iter_records(p, REQ)
    assert next(it)[0] == 1  # records before the bad one are yielded
    with pytest.raises(RecordError, match=match):
        next(it)


def test_json_array_files_name_the_record(tmp_path):
    p = tmp_path / "wma.json"
    p.write_text(json.dumps([rec(), rec(), rec(state="flat")]))
    with pytest.raises(RecordError, match=r"wma.json: record 2: field 'state' is str \"flat\", "
                                          r"expected dict"):
        read_records(p, REQ)
    assert [i for i, _ in iter_records(p)] == [0, 1, 2]
    p.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(RecordError, match="wma.json: expected a JSON array of records, got dict"):
        read_records(p)
    p.write_text('[{"a": 1},\n {"a": ')
    with pytest.raises(RecordError, match=r"wma.json:2: not valid JSON"):
        read_records(p)


def test_unreadable_files(tmp_path):
    with pytest.raises(RecordError, match="nope.jsonl: no such record file"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(RecordError, match=r"x.csv: unknown record file type; expected \.jsonl"):
        read_records(tmp_path / "x.csv")
    p = write_lines(tmp_path / "t.jsonl.gz", [json.dumps(rec())] * 200)
    p.write_bytes(p.read_bytes()[:-30])  # a truncated download
    with pytest.raises(RecordError, match=r"t.jsonl.gz: unreadable after line \d+ \(corrupt or truncated"):
        read_records(p)
    (tmp_path / "b.jsonl").write_bytes(b'{"a": 1}\n\xff\xfe\n')
    with pytest.raises(RecordError, match="b.jsonl:2: not UTF-8 text"):
        read_records(tmp_path / "b.jsonl")
