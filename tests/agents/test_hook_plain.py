"""The hook reads plain lines (hoopcli.agents.shellwords._plain) without bashlex: whatever it
accepts, it must read exactly as bashlex does. Generated lines from shell-ish pieces, and the
shapes Claude Code sends most, compared with the bashlex path command by command."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoopcli.agents import shellwords
from hoopcli.agents.shellwords import Scan, _plain, scan


def _seen(found: Scan) -> tuple[object, ...]:
    return ([(c.argv, c.computed, c.via, c.assigns) for c in found.commands], found.problems, found.heredocs)


def both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """What scan finds with the plain reader, and with bashlex alone."""
    fast = _seen(scan(text))
    with monkeypatch.context() as m:
        m.setattr(shellwords, "_plain", lambda _text: None)
        slow = _seen(scan(text))
    return fast, slow


COMMON = [
    "git status --short && npm test -- --watch=false",
    "aws s3api list-buckets --query 'Buckets[].Name' --output text | tr '\\t' '\\n'",
    "cd /work/app && python3 -m pytest -q tests/ 2>&1 | tail -20",
    "npm run build > build.log 2>/dev/null; echo $?",
    "git commit -m \"fix: don't retry\" && git push origin main",
    "A=1 B='x y' aws s3 ls s3://logs/",
    "env AWS_PROFILE=prod aws sts get-caller-identity",
    "export AWS_ACCESS_KEY_ID=AKIA",
    "sudo -u deploy aws s3 rm s3://b/k",
    "bash -c \"aws iam create-access-key --user-name ci\"",
    "timeout 30 aws logs tail /aws/lambda/f --follow",
    "xargs -n1 aws s3 rm < keys.txt",
    "python deploy.py --stage prod &",
    "ls -la; pwd",
    "grep -rn \"TODO\" src/ | head -50",
    "'a*' b",
    "ls -la src/*.py && pytest tests/test_?.py",
    "cd ~/proj && ~/bin/aws s3 ls",
    "git commit -m 'x; time y' && echo '<<EOF'",
    "A+=x b",
    "a 12>o >>log <in >&2 2>&-",
    "bash",
    "echo done",
    "",
    "   ",
]


@pytest.mark.parametrize("text", COMMON)
def test_common_lines_read_as_bashlex_reads_them(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(text, monkeypatch)
    assert fast == slow


def test_most_common_lines_need_no_parser() -> None:
    plain = [t for t in COMMON if _plain(t) is not None]
    assert len(plain) >= 16
    for text in ("echo done", "", "   ", "npm run build > build.log 2>/dev/null; echo $?", "a &>o", "a |& b",
                 "a ; ; b", "a &&", "| a", ">o A=1 b", "x=$(aws s3 ls)", "ls [ab].py", "cat <<EOF\nx\nEOF", "a\nb",
                 "echo 'caf\u00e9'", "a \\; b", "(aws s3 ls)", "{ aws s3 ls; }", "! aws s3 ls", "ls ~'x'", "a # c", "ls {a,b}"):
        assert _plain(text) is None, text


PIECES = ["aws", "s3", "ls", "rm", "bash", "sh", "-c", "-lc", "env", "-i", "-u", "sudo", "xargs", "timeout", "5",
          "command", "-v", "find", "-exec", "nohup", "python", "./run", "eval", "su", "watch", "export", "unset",
          "A=1", "AWS_PROFILE=x", "A+=2", "1A=2", "a=b=c", "'x y'", "\"p q\"", "''", "\"\"", "'it\"s'", "\"it's\"",
          "'$X'", "\"a*\"", "'b?'", "'[c]'", "'{d}'", "2", "12", "2>&1", ">&2", "2>&-", ">o", ">> log", "< in",
          ">'f g'", "&&", "||", "|", ";", "&", "|&", ";;", "&>", ">", "<", "<<", "time", "done", "if", "%1", "^x",
          "@a", ":b", ",c", "--x=y", "-", "--", "=", "#", "!", "~", "$X", "`id`", "(", ")", "{", "}", "\\", "\t",
          "\n", "\u00e9", "*.py", "?", "~", "~/bin/aws", "x~", "'x;time y'", "'<<E'", "<<'E'", "timeout"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(["", " ", " ", "  "])), min_size=1, max_size=12))
def test_generated_lines_read_as_bashlex_reads_them(pieces: list[tuple[str, str]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(piece + sep for piece, sep in pieces)
    if _plain(text) is not None:
        fast, slow = both(text, monkeypatch)
        assert fast == slow, text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet="aA1_=+-.'\"$`\\*?{}[]%^@:,~/ \t|&;<>2", max_size=16))
def test_generated_characters_read_as_bashlex_reads_them(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if _plain(text) is not None:
        fast, slow = both(text, monkeypatch)
        assert fast == slow, text
