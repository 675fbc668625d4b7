"""Generate hoopcli/masking/data/: sensitive member paths per service and operation.

    python -m hoopcli.masking.generate [--check]

Walks every botocore service model's input and output shapes and records the paths of members
whose shape carries botocore's `"sensitive": true` flag. One compact JSON file per service that
has any (`<service>.json`: {"Operation": {"o": [output paths], "i": [input paths]}}), plus
`_names.json`, the member names that are sensitive somewhere (used to mask `"Name": "value"` pairs
in free text such as --debug body dumps). The hand-kept list of what the flags miss lives in
hoopcli/masking/kept.py, not here.

Path syntax (see docs/masking.md): members joined by ".", `[]` after a member for list elements,
`*` for every value of a map. Needs botocore (a build-time tool, never imported by the shim).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from hoopcli.masking.review import environment_paths, model_dirs

DATA_DIR = Path(__file__).resolve().parent / "data"

# Member names too generic to mask by name alone in free text (they are masked by path in
# parsed responses, where the operation is known).
GENERIC_NAMES = frozenset(
    {
        "Value", "value", "Values", "Data", "data", "Name", "Key", "key", "Body", "body", "Content",
        "content", "Text", "text", "Message", "message", "Description", "description", "Input",
        "Output", "Payload", "Parameters", "Properties", "Contents", "Details", "Result", "Results",
        "Query", "query", "Expression", "Statement", "Document", "Answer", "Prompt", "Comment",
        "Label", "Title", "Email", "email", "Address", "PhoneNumber", "Username", "UserName",
        "Attributes", "Events", "Records", "Item", "Items", "Summary", "summary", "Source",
        "Context", "Configuration", "Definition", "Template", "Metadata", "Tags", "tags",
        "Arguments", "Entries", "Variables", "Environment", "Code", "Messages",
    }
)


def _walk(shapes: dict[str, Any], name: str, path: str, stack: tuple[str, ...], out: list[str]) -> None:
    shape = shapes.get(name)
    if shape is None or name in stack:
        return
    if shape.get("sensitive"):
        out.append(path)
        return
    stack = (*stack, name)
    kind = shape.get("type")
    if kind == "structure":
        for member, ref in shape.get("members", {}).items():
            child = f"{path}.{member}" if path else member
            _walk(shapes, ref["shape"], child, stack, out)
    elif kind == "list":
        _walk(shapes, shape["member"]["shape"], path + "[]", stack, out)
    elif kind == "map":
        key = shapes.get(shape["key"]["shape"], {})
        if key.get("sensitive"):
            out.append(path)  # sensitive keys: the whole map
            return
        _walk(shapes, shape["value"]["shape"], f"{path}.*", stack, out)


# botocore flags PII ("Username", "Description", "IPAddress") as well as secrets. Paths whose last
# member name looks like a secret are masked by default ("o"/"i"); the rest are stored as "po"/"pi"
# and masked only when policy asks for PII masking.
SECRET_NAME = re.compile(
    r"(?i)(passw|passphrase|secret|token|credential|private_?key|plaintext|seed|api_?key|"
    r"authparameters|challengeresponses|auth_?code|authorizationcode|cookie|signature|keymaterial|"
    r"cryptogram|^session$|sessionkey|^pin$|otp|variables$|^environment$|connectionproperties|"
    r"bearer|hmac|presigned|sharedkey)"
)
NOT_SECRET_NAME = re.compile(
    r"(?i)(id|ids|arn|arns|name|names|type|status|date|time|description|length|version|"
    r"expiration|count|enabled|required|sample|policy)$"
)
NOT_SECRET_NAMES = frozenset(
    {"clientrequesttoken", "clienttoken", "nexttoken", "idempotencytoken", "token",
     "continuationtoken", "paginationtoken"}
)
MAX_SEGMENTS = 6  # deeper flagged paths are cut here (the whole subtree is masked)


def leaf_name(path: str) -> str:
    for segment in reversed(path.split(".")):
        name = segment.replace("[]", "")
        if name and name != "*":
            return name
    return ""


def is_secret_path(path: str) -> bool:
    leaf = leaf_name(path)
    return bool(
        SECRET_NAME.search(leaf)
        and not NOT_SECRET_NAME.search(leaf)
        and leaf.lower() not in NOT_SECRET_NAMES
    )


def _cut(path: str) -> str:
    segments = path.split(".")
    return ".".join(segments[:MAX_SEGMENTS])


def service_paths(model: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """{operation: {"o","i","po","pi": [paths]}} for one raw service-2 model (non-empty only)."""
    shapes = model.get("shapes", {})
    result: dict[str, dict[str, list[str]]] = {}
    for op_name, op in sorted(model.get("operations", {}).items()):
        entry: dict[str, list[str]] = {}
        for io, key in (("o", "output"), ("i", "input")):
            ref = op.get(key)
            if not ref:
                continue
            paths: list[str] = []
            _walk(shapes, ref["shape"], "", (), paths)
            cut = {_cut(p) for p in paths if p}
            # environment variable values, flagged or not (names stay visible): review.py's rule
            env = {_cut(p) for p in environment_paths(shapes, ref["shape"])}
            cut |= {p for p in env if not any(p == q or p.startswith(q + ".") or p.startswith(q + "[")
                                              for q in cut)}
            # a cut path covers every longer path below it
            cut = {p for p in cut if not any(p.startswith(q + ".") for q in cut if q != p)}
            secret = sorted(p for p in cut if is_secret_path(p) or p in env)
            pii = sorted(p for p in cut if not (is_secret_path(p) or p in env))
            if secret:
                entry[io] = secret
            if pii:
                entry["p" + io] = pii
        if entry:
            result[op_name] = entry
    return result


def _loaders() -> list[Any]:
    """One botocore loader per model copy (model_dirs)."""
    from botocore.loaders import Loader

    return [Loader(extra_search_paths=[str(d)], include_default_search_paths=False) for d in model_dirs()]


def generate() -> dict[str, dict[str, dict[str, list[str]]]]:
    """{service: {operation: {"o","i","po","pi": [...]}}}: the union over every model copy."""
    merged: dict[str, dict[str, dict[str, set[str]]]] = {}
    for loader in _loaders():
        for service in loader.list_available_services("service-2"):
            model = loader.load_service_model(service, "service-2")
            for op, entry in service_paths(model).items():
                slot = merged.setdefault(service, {}).setdefault(op, {})
                for io, paths in entry.items():
                    slot.setdefault(io, set()).update(paths)
    return {
        service: {op: {io: sorted(p) for io, p in sorted(entry.items())} for op, entry in sorted(ops.items())}
        for service, ops in sorted(merged.items())
    }


def sensitive_names(data: dict[str, dict[str, dict[str, list[str]]]]) -> list[str]:
    names: set[str] = set()
    for ops in data.values():
        for entry in ops.values():
            for io in ("o", "i"):
                for path in entry.get(io, ()):
                    leaf = path.split(".")[-1].replace("[]", "")
                    if leaf and leaf != "*" and leaf not in GENERIC_NAMES and len(leaf) > 3 \
                            and not re.search(r"(?i)variables$|^environment$|^session$", leaf):
                        names.add(leaf)
    return sorted(names)


def render(data: dict[str, Any]) -> dict[str, str]:
    """File name -> content for the whole data directory."""
    files = {
        f"{service}.json": json.dumps(ops, separators=(",", ":"), sort_keys=True) + "\n"
        for service, ops in data.items()
    }
    files["_names.json"] = json.dumps(sensitive_names(data), separators=(",", ":")) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hoopcli.masking.generate")
    parser.add_argument("--check", action="store_true", help="exit 1 if the stored data is stale")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    files = render(generate())
    # _review.json is the model review's kept list (hoopcli.masking.review), not generated here
    existing = {p.name for p in args.out.glob("*.json") if p.name != "_review.json"} if args.out.exists() else set()
    if args.check:
        stale = sorted(
            name for name, text in files.items()
            if not (args.out / name).exists() or (args.out / name).read_text() != text
        ) + sorted(existing - set(files))
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in existing - set(files):
        (args.out / name).unlink()
    for name, text in files.items():
        (args.out / name).write_text(text)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
