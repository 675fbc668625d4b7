from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoopcli.policy.glob import MAX_PATTERN_LENGTH, MAX_WILDCARDS, Glob, check_pattern


@pytest.mark.parametrize("pattern,value,expected", [
    ("s3:Delete*", "s3:DeleteObject", True),
    ("s3:Delete*", "s3:deleteobject", True),       # IAM actions fold case
    ("s3:Delete*", "s3:PutObject", False),
    ("iam:*", "iam:CreateAccessKey", True),
    ("*", "", True),
    ("*:Get*", "ec2:GetConsoleOutput", True),
    ("s3:?etObject", "s3:GetObject", True),
    ("s3:?etObject", "s3:GGetObject", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "acb", False),
    ("a*a", "a", False),
    ("*x*", "yyy", False),
    ("ab*ba", "aba", False),
])
def test_folding_globs(pattern: str, value: str, expected: bool) -> None:
    assert Glob(pattern, fold=True).match(value) is expected


def test_resources_do_not_fold_case() -> None:
    assert not Glob("arn:aws:s3:::Prod-*").match("arn:aws:s3:::prod-data")
    assert Glob("arn:aws:s3:::prod-*").match("arn:aws:s3:::prod-data/key")


def test_regex_metacharacters_are_literal() -> None:
    g = Glob("a.b(c)+[d]")
    assert g.match("a.b(c)+[d]")
    assert not g.match("axb(c)+[d]")


@pytest.mark.parametrize("pattern,problem", [
    ("", "empty"),
    ("a" * (MAX_PATTERN_LENGTH + 1), "longer"),
    ("*a" * (MAX_WILDCARDS + 1), "wildcards"),
    ("?" * (MAX_WILDCARDS + 1), "wildcards"),
])
def test_refused_patterns(pattern: str, problem: str) -> None:
    assert problem in (check_pattern(pattern) or "")
    with pytest.raises(ValueError):
        Glob(pattern)


def test_glob_bomb_is_linear() -> None:
    # The classic catastrophic case for backtracking matchers: many stars, a long value that
    # almost matches. With the segment matcher this returns at once (no timing assertion:
    # the test would hang, not fail slowly, if matching were exponential).
    g = Glob("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b")
    assert not g.match("a" * 100_000)


alphabet = st.sampled_from("ab*?:")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet, min_size=1, max_size=12).filter(lambda p: check_pattern(p) is None),
       st.text("ab:", max_size=14))
def test_agrees_with_fnmatch(pattern: str, value: str) -> None:
    # fnmatchcase has the same * and ? semantics once [ is excluded from the alphabet
    expected = re.fullmatch(fnmatch.translate(pattern), value, re.DOTALL) is not None
    assert Glob(pattern).match(value) is expected
