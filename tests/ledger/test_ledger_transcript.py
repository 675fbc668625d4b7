"""The transcript schema file, the stdlib validator, canonical bytes and size caps."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from ledger_factory import command, start

from hoopcli.canonical import canonical_json
from hoopcli.transcript import schema as transcript

GOOD = command("sess-1", 0)


def test_schema_file_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(transcript.schema())


@pytest.mark.parametrize("record", GOOD, ids=["start", "result"])
def test_good_records_validate_with_both_validators(record: dict) -> None:
    assert transcript.validate(record) == []
    jsonschema.Draft202012Validator(transcript.schema()).validate(record)


def mutate(record: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(record)
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


BAD = [
    (0, "v", 2, "$.v"), (0, "type", "command.evil", "$.type"), (0, "id", "not-a-uuid", "$.id"),
    (0, "id", KeyError, "$.id"), (0, "session_id", "", "$.session_id"),
    (0, "session_id", "a/b", "$.session_id"), (0, "session_id", "x" * 200, "$.session_id"),
    (0, "seq", -1, "$.seq"), (0, "seq", True, "$.seq"), (0, "seq", "1", "$.seq"),
    (0, "time", "yesterday", "$.time"), (0, "argv", "s3 ls", "$.argv"),
    (0, "argv", ["s3", 5], "$.argv[1]"), (0, "decision.effect", "maybe", "$.decision.effect"),
    (0, "approval", "yes", "$.approval"), (1, "exit_code", KeyError, "$.exit_code"),
    (1, "exit_code", 1.5, "$.exit_code"), (1, "stdout", {"size": 3}, "$.stdout.text"),
    (1, "api_calls", [{"service": "s3"}], "$.api_calls[0].operation"),
    (1, "timings", {"run_ms": -4}, "$.timings.run_ms"),
]


@pytest.mark.parametrize("which,path,value,where", BAD, ids=[f"{b[1]}={b[2]!r}"[:40] for b in BAD])
def test_bad_records_are_refused_by_both_validators(which: int, path: str, value: object,
                                                    where: str) -> None:
    bad = mutate(GOOD[which], path, value)
    errors = transcript.validate(bad)
    assert errors and any(e.startswith(where) for e in errors), errors
    assert not jsonschema.Draft202012Validator(transcript.schema()).is_valid(bad)


@pytest.mark.parametrize("value", [None, [], "x", 3, {"type": None}])
def test_non_records(value: object) -> None:
    assert transcript.validate(value)


def test_unknown_top_level_fields_are_kept() -> None:
    rec = dict(GOOD[0], future_field={"x": 1})
    assert transcript.validate(rec) == []


def test_canonical_json_is_stable_and_refuses_nan() -> None:
    a = canonical_json({"b": 1, "a": "é"})
    assert a == '{"a":"é","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_caps_cut_streams_and_strings_with_marks() -> None:
    big = "é" * 800_000  # 1.6 MB of UTF-8
    s = start("sess-1", 0, agent="a" * 100_000)
    r = command("sess-1", 0, stdout=big)[1]
    r["api_calls"] = r["api_calls"] * 1500
    capped, marks = transcript.apply_caps(r)
    assert capped["stdout"]["truncated"] is True
    assert capped["stdout"]["size"] == len(big.encode())
    assert len(capped["stdout"]["text"].encode()) <= transcript.STREAM_CAP
    assert len(capped["api_calls"]) == transcript.API_CALLS_CAP
    assert any(m.startswith("$.stdout.text") for m in marks)
    assert "$.api_calls: 500 entries dropped" in marks
    assert transcript.validate(capped) == []
    capped_s, marks_s = transcript.apply_caps(s)
    assert capped_s["agent"].endswith("bytes]") and len(capped_s["agent"]) < 70_000
    assert marks_s == [f"$.agent: {100_000 - transcript.STRING_CAP} bytes cut"]
    assert transcript.apply_caps(GOOD[1]) == (GOOD[1], [])


def test_schema_documents_every_contract_field() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "transcript.md").read_text()
    defs = transcript.schema()["$defs"]
    for part in ("start", "result", "call", "api_call", "decision", "approval", "credentials", "stream",
                 "response"):
        for field in defs[part]["properties"]:
            assert f"`{field}`" in doc, (part, field)
    assert json.dumps(transcript.schema(), indent=2)[:40] in doc or "transcript/schema.json" in doc


def test_fast_path_agrees_with_the_full_walk() -> None:
    small = command("s", 0)[1]
    size = len(canonical_json(small))
    assert transcript.apply_caps(small, encoded_size=size) == transcript.apply_caps(small)
    many = dict(small, argv=["x"] * 300)
    size = len(canonical_json(many))
    capped, marks = transcript.apply_caps(many, encoded_size=size)
    assert len(capped["argv"]) == transcript.ARGV_CAP and marks == ["$.argv: 44 entries dropped"]
