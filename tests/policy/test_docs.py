"""docs/policy.md stays true: its example policies compile, and every shipped default rule is explained."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hoopcli.policy.compiler import check_source

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "policy.md").read_text()


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC, re.S)


def test_complete_examples_compile() -> None:
    checked = 0
    for block in yaml_blocks():
        first = block.lstrip().split(":", 1)[0]
        if first not in ("version", "defaults", "offline", "masking"):
            continue    # fragments of a rule, shown for their keys
        compiled, problems = check_source(block)
        assert compiled is not None, [p.format("docs/policy.md") for p in problems]
        checked += 1
    assert checked >= 4


def test_first_example_reads_as_intended() -> None:
    compiled, _ = check_source(yaml_blocks()[0])
    assert compiled is not None
    assert compiled["rules"][0]["reason"] == "Production buckets are never emptied by an agent; ask #storage."


def test_every_default_rule_is_documented() -> None:
    default = yaml.safe_load((ROOT / "hoopcli" / "policy" / "data" / "default.yaml").read_text())
    for rule in default["rules"]:
        assert f"`{rule['id']}`" in DOC, rule["id"]
        for action in rule["match"].get("actions", []):
            assert f"`{action}`" in DOC or action in DOC, action
