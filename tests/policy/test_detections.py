"""The policy's `detections:` section: validated with line and column like the rest, compiled
only when present (other policies keep their ETag), and `hoop policy test` shows what a sample
of commands would raise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hoopcli.cli import main
from hoopcli.policy.compiler import check_source
from hoopcli.policy.detections import SHIPPED, effective

GOOD = """\
version: 1
detections:
  shipped:
    mass-secret-reads: {count: 3, window: 15m, action: revoke, scope: session}
    enumeration-burst: off
    error-rate-spike: {ratio: 0.8}
    first-secret-access: {learning: 0, days: 90}
  rules:
    - id: bulk-deletes
      description: many deletes in a short time
      match: {actions: ["s3:DeleteObject"], connections: [prod]}
      count: 2
      window: 1m
      distinct: resources
      outcome: succeeded
      severity: critical
      action: hold
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compiled_section_and_the_rules_in_force() -> None:
    compiled, problems = check_source(GOOD)
    assert compiled is not None and problems == []
    section = compiled["detections"]
    assert section["shipped"]["mass-secret-reads"] == {"count": 3, "window": 900, "action": "revoke",
                                                       "scope": "session"}
    assert section["shipped"]["enumeration-burst"] == {"enabled": False}
    [custom] = section["rules"]
    assert custom["match"] == {"actions": ["s3:DeleteObject"], "connections": ["prod"]}
    rules = {r["id"]: r for r in effective(section)}
    assert "enumeration-burst" not in rules and len(rules) == len(SHIPPED)
    assert rules["mass-secret-reads"]["action"] == "revoke" and rules["policy-probing"]["count"] == 5
    assert rules["bulk-deletes"]["kind"] == "distinct"


def test_policies_without_the_section_compile_as_before() -> None:
    compiled, _ = check_source("version: 1\nrules: []\n")
    assert compiled is not None and "detections" not in compiled
    compiled, _ = check_source("version: 1\ndetections:\n")
    assert compiled is not None and compiled["detections"] == {"shipped": {}, "rules": []}


@pytest.mark.parametrize("body,expected", [
    ("detections:\n  shiped: {}\n", "2:3: error: unknown key 'shiped' in detections (expected one of: shipped, rules)"),
    ("detections:\n  shipped:\n    mass-secret-read: {count: 3}\n",
     "3:5: error: unknown key 'mass-secret-read' in detections.shipped (expected one of: mass-secret-reads,"),
    ("detections:\n  shipped:\n    mass-secret-reads: {count: 0}\n",
     "3:32: error: detections.shipped.mass-secret-reads.count must be a whole number from 1 to 100000"),
    ("detections:\n  shipped:\n    policy-probing: {window: 7h}\n",
     "3:30: error: detections.shipped.policy-probing.window must be between 1s and 6h"),
    ("detections:\n  shipped:\n    policy-probing: {ratio: 0.5}\n",
     "3:22: error: unknown key 'ratio' in detections.shipped.policy-probing"),
    ("detections:\n  shipped:\n    error-rate-spike: {ratio: 2}\n",
     "3:31: error: detections.shipped.error-rate-spike.ratio must be a number above 0 and at most 1"),
    ("detections:\n  shipped:\n    credential-minting: {action: page}\n",
     "3:34: error: detections.shipped.credential-minting.action must be one of: alert, hold, revoke"),
    ("detections:\n  rules:\n    - {id: x, match: {actoins: [s3:GetObject]}, count: 1, window: 1m}\n",
     "3:23: error: unknown key 'actoins' in detection 'x'.match"),
    ("detections:\n  rules:\n    - {id: x, match: {groups: [sre]}, count: 1, window: 1m}\n",
     "3:23: error: detection 'x'.match: detections cannot match on groups"),
    ("detections:\n  rules:\n    - {id: x, match: {}, window: 1m}\n", "3:7: error: detection 'x' needs a count"),
    ("detections:\n  rules:\n    - {id: policy-probing, match: {}, count: 1, window: 1m}\n",
     "3:12: error: detections.rules[0].id 'policy-probing' is a shipped rule"),
    ("detections:\n  rules:\n    - {id: x, match: {}, count: 1, window: 1m}\n    - {id: x, match: {}, count: 1, window: 1m}\n",
     "4:12: error: duplicate detection id 'x' (first at line 4)"),
    ("detections:\n  rules:\n    - {id: x, match: {}, count: 1, window: 1m, distinct: secrets}\n",
     "3:58: error: detection 'x'.distinct must be one of: resources, services, actions, operations, regions"),
])
def test_errors_have_line_and_column(body: str, expected: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    pol = tmp_path / "bad.yaml"
    pol.write_text("version: 1\n" + body)
    code, _out, err = run(capsys, "policy", "validate", str(pol))
    line, _, rest = expected.partition(":")
    assert code == 1
    assert f"{pol}:{int(line) + 1}:{rest}" in err, err


def test_validate_counts_the_detection_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text(GOOD)
    code, out, _ = run(capsys, "policy", "validate", str(pol))
    assert (code, out) == (0, f"{pol}: ok (0 rules, 1 detection rule, 0 warnings)\n")


SAMPLE = "\n".join([*(f"aws secretsmanager get-secret-value --secret-id app/s{i}" for i in range(20)),
                    "aws cloudtrail stop-logging --name org-trail",
                    "aws iam create-access-key --user-name bob"]) + "\n"


def test_policy_test_shows_the_detections_a_sample_raises(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    default = Path(__file__).parents[2] / "hoopcli" / "policy" / "data" / "default.yaml"
    cmds = tmp_path / "cmds.txt"
    cmds.write_text(SAMPLE)
    code, out, _ = run(capsys, "policy", "test", str(default), "--commands", str(cmds))
    assert code == 0
    tail = out.split("LINE  DETECTION", 1)[1].splitlines()[1:]
    assert [line.split()[:4] for line in tail] == [["20", "mass-secret-reads", "high", "hold"],
                                                   ["21", "defence-evasion", "high", "hold"]]
    code, out, _ = run(capsys, "policy", "test", str(default), "--commands", str(cmds), "--json", "--interval", "60")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["detections"] for r in rows[:20]] == [[]] * 20         # one a minute: never 20 in 10 minutes
    assert [d["rule"] for d in rows[20]["detections"]] == ["defence-evasion"]
    assert rows[21]["decision"] == "deny" and rows[21]["detections"] == []   # denied: nothing minted


def test_policy_test_says_when_nothing_would_be_raised(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text(GOOD)
    cmds = tmp_path / "cmds.txt"
    cmds.write_text("aws s3api list-buckets\n")
    code, out, _ = run(capsys, "policy", "test", str(pol), "--commands", str(cmds))
    assert code == 0 and out.endswith("detections: none would be raised\n")
