"""The review of botocore's output shapes for secrets under names the sensitive flags may miss.

    python -m hoopcli.masking.review            # print paths found that _review.json does not list
    python -m hoopcli.masking.review --write    # add them to _review.json as "todo" (decide each!)

The rule (`found`): in every operation's output shape, a string or blob leaf (enums excluded; maps
give `*`, lists `[]`; at most 6 members deep; a recursive shape is followed once) whose nearest
member name
  - contains password, passphrase, secret, token, credential, private key or api key, and is not a
    reference or fact about one (`...Arn`, `...Id`, `...Name`, `...Type`, `...Status`, dates,
    lengths, policies) or a pagination, idempotency or change-tracking token (`NextToken`,
    `NextPageToken`, `ClientRequestToken`, `ChangeToken`, `CreationToken`: NOT_A_VALUE), or
  - is environment, environmentVariables or variables (a map or list of strings), or
  - is `value` directly inside one of those (`environment[].value`, `environmentVariables[].value`).

hoopcli/masking/data/_review.json lists every path found, per service and operation, with
"masked" or the reason it is not. tests/masking/test_model_review.py fails when a path is found
that the list does not have, or a path the list says is masked is not masked by `Masker`.
Needs botocore: a build-time tool, never imported by the shim.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REVIEW_FILE = Path(__file__).resolve().parent / "data" / "_review.json"
MAX_MEMBERS = 6
SECRET_WORD = re.compile(r"(?i)passw|passphrase|secret|token|credential|private_?key|api_?key")
NOT_A_VALUE = re.compile(
    r"(?i)(arns?|ids?|names?|types?|status|state|date|time|timestamp|length|count|enabled|required|"
    r"policy|policies|version|expiration|expiry|expires|duration|period|age|days|config|"
    r"configuration|settings|options|location|source|mode|format|reason|message|description|"
    r"url|uri|endpoint|arnlist|list|summary|summaries|details|metadata|rotation\w*|scope|"
    r"scopes|provider|kms\w*|key_?id|hint|field|validity|method|algorithm|strategy|support|"
    r"supported|ttl|timeout|len|size|character\w*|level|output|parameter)$|^(next|client|clientrequest|"
    r"continuation|pagination|idempotency)token$|(page|continuation|request|change|creation|sequence)token$|"
    r"^(is|has|use|require|allow|enable)[A-Z_]"
)
ENV_NAMES = frozenset({"environment", "environmentvariables", "variables"})
# what the generator masks (hoopcli/masking/generate.py): environment variable values, the names
# staying visible. `variables` alone (API Gateway stage variables, automation variables, message
# template variables) is configuration and only reviewed.
ENV_CONTAINERS = frozenset({"environment", "environmentvariables", "environmentvariablesoverride"})
STATUSES = ("masked",)


def found_paths(model: dict[str, Any]) -> dict[str, list[str]]:
    """{operation: [paths]} for one raw service-2 model (operations with none are left out)."""
    shapes = model.get("shapes", {})
    out: dict[str, list[str]] = {}
    for name, op in sorted(model.get("operations", {}).items()):
        ref = op.get("output")
        if not ref:
            continue
        paths = sorted({_render(steps) for steps in _leaves(shapes, ref["shape"], (), ())
                        if _is_found(steps)})
        if paths:
            out[name] = paths
    return out


def _members(steps: tuple[str, ...]) -> list[str]:
    return [s for s in steps if s not in ("*", "[]")]


def _is_found(steps: tuple[str, ...]) -> bool:
    names = _members(steps)
    if not names:
        return False
    leaf = names[-1]
    if leaf.lower() in ENV_NAMES and steps[-1] in ("*", "[]"):
        return True
    if leaf.lower() == "value" and len(names) > 1 and names[-2].lower() in ENV_NAMES:
        return True
    return bool(SECRET_WORD.search(leaf)) and not NOT_A_VALUE.search(leaf)


def is_environment_value(steps: tuple[str, ...]) -> bool:
    """An environment variable's value: `environment.*`, `environment[]`, `environment[].value`,
    `environmentVariables.*`, `Environment.Variables.*` (and the same with Value)."""
    names = [n.lower() for n in _members(steps)]
    if not names:
        return False
    if names[-1] in ENV_CONTAINERS and steps[-1] in ("*", "[]"):
        return True
    return len(names) > 1 and (
        (names[-1] == "value" and names[-2] in ENV_CONTAINERS)
        or (names[-1] == "variables" and names[-2] == "environment" and steps[-1] == "*"))


def environment_paths(shapes: dict[str, Any], shape_name: str) -> list[str]:
    """The environment-value paths under one shape (for the generator)."""
    return sorted({_render(steps) for steps in _leaves(shapes, shape_name, (), ())
                   if is_environment_value(steps)})


def _leaves(shapes: dict[str, Any], shape_name: str, steps: tuple[str, ...],
            stack: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    shape = shapes.get(shape_name)
    if shape is None or shape_name in stack:
        return
    kind = shape.get("type")
    if kind in ("string", "blob"):
        if "enum" not in shape:
            yield steps
        return
    stack = (*stack, shape_name)
    if kind == "structure":
        if sum(1 for s in steps if s not in ("*", "[]")) >= MAX_MEMBERS:
            return
        for member, mref in shape.get("members", {}).items():
            yield from _leaves(shapes, mref["shape"], (*steps, member), stack)
    elif kind == "list":
        yield from _leaves(shapes, shape["member"]["shape"], (*steps, "[]"), stack)
    elif kind == "map":
        yield from _leaves(shapes, shape["value"]["shape"], (*steps, "*"), stack)


def _render(steps: tuple[str, ...]) -> str:
    text = ""
    for step in steps:
        if step == "[]":
            text += "[]"
        else:
            text += ("." if text else "") + step
    return text


def model_dirs() -> list[Path]:
    """The model copies, by explicit directory (never ~/.aws/models or AWS_DATA_PATH, so the
    output does not depend on who runs it): botocore's, plus awscli v1's vendored copy when
    installed (the in-process runner uses that one; it may be older or newer)."""
    from importlib import metadata

    # By distribution, not by module: once awscli.clidriver is imported, `import botocore`
    # resolves to awscli's vendored copy.
    dirs = []
    for dist, sub in (("botocore", "botocore/data"), ("awscli", "awscli/botocore/data")):
        try:
            path = Path(str(metadata.distribution(dist).locate_file(sub))).resolve()
        except metadata.PackageNotFoundError:
            continue
        if path.is_dir():
            dirs.append(path)
    return dirs


def iter_models() -> Iterator[tuple[str, dict[str, Any]]]:
    """(service, raw service-2 model) for the newest API version of every service, in each model
    copy the generator reads (botocore's and awscli's vendored one). Read directly: botocore's
    Loader takes ten times longer for the same files."""
    import gzip

    for root in model_dirs():
        for service_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            versions = sorted(v for v in service_dir.iterdir() if v.is_dir())
            for version in reversed(versions):
                plain, packed = version / "service-2.json", version / "service-2.json.gz"
                if plain.exists():
                    yield service_dir.name, json.loads(plain.read_bytes())
                    break
                if packed.exists():
                    yield service_dir.name, json.loads(gzip.decompress(packed.read_bytes()))
                    break


def find_all() -> dict[str, dict[str, list[str]]]:
    """{service: {operation: [paths]}}: the union over every service in every model copy."""
    merged: dict[str, dict[str, set[str]]] = {}
    for service, model in iter_models():
        for operation, paths in found_paths(model).items():
            merged.setdefault(service, {}).setdefault(operation, set()).update(paths)
    return {service: {op: sorted(paths) for op, paths in sorted(ops.items())}
            for service, ops in sorted(merged.items())}


def load_review(path: Path = REVIEW_FILE) -> dict[str, dict[str, dict[str, str]]]:
    """{service: {operation: {path: "masked" | reason}}}."""
    data: dict[str, dict[str, dict[str, str]]] = json.loads(path.read_text())
    return data


def sample_for(path: str, secret: str) -> dict[str, Any]:
    """A parsed response holding `secret` at `path` (map key "K", one list element)."""
    steps: list[str] = []
    for segment in path.split("."):
        name = segment.replace("[]", "")
        steps.append(name)
        steps.extend(["[]"] * segment.count("[]"))
    value: Any = secret
    for step in reversed(steps):
        if step == "[]":
            value = [value]
        elif step == "*":
            value = {"K": value}
        else:
            value = {step: value}
    assert isinstance(value, dict)
    return value


def is_masked(masker: Any, service: str, operation: str, path: str) -> bool:
    """True when Masker hides a (label-free, unshaped) value at this path of this response."""
    import hashlib

    # lowercase letters, unique per path (a Masker remembers values it masked): no detector
    # recognises this, only a path or a member name masks it
    digest = hashlib.sha256(f"{service} {operation} {path}".encode()).hexdigest()
    secret = "zq" + "".join(chr(ord("a") + int(c, 16)) for c in digest[:20])
    shown = masker.mask_parsed(service, operation, sample_for(path, secret))
    return secret not in json.dumps(shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hoopcli.masking.review")
    parser.add_argument("--write", action="store_true", help='add new paths to _review.json as "todo"')
    args = parser.parse_args(argv)
    review = load_review() if REVIEW_FILE.exists() else {}
    new = 0
    for service, ops in find_all().items():
        for operation, paths in ops.items():
            for path in paths:
                if path not in review.get(service, {}).get(operation, {}):
                    new += 1
                    print(f"{service} {operation} {path}")
                    review.setdefault(service, {}).setdefault(operation, {})[path] = "todo"
    if args.write:
        REVIEW_FILE.write_text(json.dumps(review, indent=1, sort_keys=True) + "\n")
    print(f"{new} paths not in {REVIEW_FILE.name}", file=sys.stderr)
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main())
