"""The aws command-line parser behind ``hoopcli.parse.parse``. Stdlib only at import.

Reads argv like awscli does: global options anywhere (``--region x`` or ``--region=x``), then
``<service> <operation> [options]``; maps the names to API calls through the generated index.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from hoopcli.errors import InvocationError
from hoopcli.parse import index as actions
from hoopcli.parse import s3 as s3cmd
from hoopcli.parse.invocation import UNKNOWN, ApiCall, GlobalOptions, Invocation, strictest

# Global options taking a value, and switches, as awscli v1 and v2 accept them.
GLOBAL_VALUES = {"profile", "region", "endpoint-url", "output", "query", "ca-bundle",
                 "cli-read-timeout", "cli-connect-timeout", "color", "cli-binary-format"}
GLOBAL_FLAGS = {"debug", "no-verify-ssl", "no-paginate", "no-sign-request", "version",
                "no-cli-pager", "cli-auto-prompt", "no-cli-auto-prompt", "v2-debug"}
_GLOBAL_FIELDS = {f.replace("_", "-") for f in GlobalOptions.__slots__}
CONFIGURE_OPS = ("list", "get", "set", "add-model", "import", "list-profiles",
                 "export-credentials", "sso", "sso-session")
LOCAL_SERVICES = {"configure": "configure", "history": "custom"}
MAX_RESOURCES = 20


def _show(word: str) -> str:
    """A name from the command line, quoted and cut for an error message."""
    return repr(word if len(word) <= 64 else word[:64] + "...")


def _suggest(word: str, choices: Any) -> str:
    if len(word) > 64:  # difflib is quadratic; no real name is that long
        return ""
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _split_globals(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    found: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("--"):
            name, eq, value = tok[2:].partition("=")
            if name in GLOBAL_VALUES:
                if not eq:
                    if i + 1 >= len(argv):
                        raise InvocationError(f"--{name} needs a value")
                    i += 1
                    value = argv[i]
                found[name] = value
                i += 1
                continue
            if name in GLOBAL_FLAGS and not eq:
                found[name] = True
                i += 1
                continue
        rest.append(tok)
        i += 1
    return found, rest


def _options(tokens: list[str], flags: set[str] | frozenset[str] = frozenset(),
             multi: set[str] | frozenset[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """`--name value...` pairs and bare positionals. An option takes the following tokens that
    do not start with `--` (one list for several), except switches in `flags` which take none;
    when `multi` is given (commands with positional arguments), only those take several."""
    params: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            if eq:
                params[name] = value
            elif name in flags:
                params[name] = True
            else:
                values = []
                while i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                    i += 1
                    values.append(tokens[i])
                    if multi is not None and name not in multi:
                        break
                params[name] = True if not values else values[0] if len(values) == 1 else values
        else:
            positionals.append(tok)
        i += 1
    return params, positionals


def _read_value(option: str, value: Any) -> str | None:
    """The text of an inline or file:// / fileb:// value; None for a file that is not a regular
    file (/dev/stdin, a FIFO): reading it here would take the input from the real CLI."""
    if not isinstance(value, str):
        raise InvocationError(f"--{option} takes one value")
    for scheme in ("file://", "fileb://"):
        if value.startswith(scheme):
            path = os.path.expanduser(value[len(scheme):])
            try:
                if not stat.S_ISREG(os.stat(path).st_mode):
                    if stat.S_ISDIR(os.stat(path).st_mode):
                        raise InvocationError(f"--{option}: cannot read {_show(value)}: Is a directory")
                    return None
                with open(path, "rb") as fh:
                    data = fh.read(10 * 1024 * 1024 + 1)
            except OSError as exc:
                raise InvocationError(
                    f"--{option}: cannot read {_show(value)}: {exc.strerror or exc}") from exc
            if len(data) > 10 * 1024 * 1024:
                raise InvocationError(f"--{option}: {_show(value)} is larger than 10 MiB")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvocationError(f"--{option}: {_show(value)} is not UTF-8 text") from exc
    return value


def _cli_input(params: dict[str, Any]) -> dict[str, Any]:
    """The --cli-input-json / --cli-input-yaml document, checked."""
    out: dict[str, Any] = {}
    for option in ("cli-input-json", "cli-input-yaml"):
        if option not in params:
            continue
        text = _read_value(option, params[option])
        if text is None:
            continue
        try:
            if option.endswith("json"):
                doc = json.loads(text)
            else:
                import yaml  # lazily: only for --cli-input-yaml

                doc = yaml.safe_load(text)
        except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError, RecursionError
            raise InvocationError(f"--{option}: malformed document: {str(exc)[:200]}") from exc
        if not isinstance(doc, dict):
            raise InvocationError(f"--{option}: the document must be an object of parameters")
        out.update(doc)
    return out


def _partition(region: str | None) -> str:
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def resources_for(hints: list[Any], params: dict[str, Any], region: str | None) -> tuple[str, ...]:
    """Fill the resource hints of an API operation from its (API-named) parameters."""
    usable = [h for h in hints if all(_names(params.get(m)) for m in h[1])]
    if not usable:
        return ()
    widest = max(len(h[1]) for h in usable)
    out: dict[str, None] = {}
    for template, members in usable:
        if len(members) != widest:
            continue
        if not template or (len(members) == 1 and all(
                v.startswith("arn:") for v in _names(params[members[0]]))):
            for m in members:
                for v in _names(params[m]):
                    out.setdefault(v, None)
            continue
        filled = [template.replace("{partition}", _partition(region))
                  .replace("{region}", region or "*").replace("{account}", "*")]
        for m in members:
            filled = [f.replace("{" + m + "}", v) for f in filled for v in _names(params[m])]
        for f in filled[:MAX_RESOURCES]:
            out.setdefault(f, None)
    return tuple(list(out)[:MAX_RESOURCES])


def _names(value: Any) -> list[str]:
    if isinstance(value, str) and value and not value.startswith(("file://", "fileb://")):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value[:MAX_RESOURCES]
    return []


def _api_call(data: dict[str, Any], op: str, params: dict[str, Any], region: str | None) -> ApiCall:
    entry = data["api"].get(op)
    if entry is None:
        return ApiCall(data["service"], op, (), UNKNOWN, (), params)
    acts, level, hints = entry[0], entry[1], entry[2]
    if len(entry) > 4 and params.get("VersionId"):  # names an object version: *ObjectVersion*
        acts, level = entry[4]
    return ApiCall(data["service"], op, tuple(acts), level if acts else UNKNOWN,
                   resources_for(hints, params, region), params)


def call_for(service: str, operation: str, params: dict[str, Any], region: str | None = None
             ) -> ApiCall:
    cli = actions.cli_name_for(service)
    data = actions.service(cli) if cli else None
    if data is None:
        return ApiCall(service, operation, (), UNKNOWN, (), dict(params))
    return _api_call(data, operation, dict(params), region)


def _api_params(cli_map: dict[str, str], params: dict[str, Any], doc: dict[str, Any]
                ) -> dict[str, Any]:
    api = dict(doc)
    for option, member in cli_map.items():
        if option in params and params[option] is not True:
            api[member] = params[option]
    return api


def _custom_calls(spec: dict[str, Any], cli: str, op: str, params: dict[str, Any],
                  region: str | None) -> tuple[ApiCall, ...]:
    out = []
    for service, api_op, acts, level, hints, cli_map in spec["calls"]:
        if not service:  # a local side effect hoop cannot bound
            out.append(ApiCall(cli, f"{cli} {op} (local)", (), UNKNOWN))
        else:
            api_params = _api_params(cli_map, params, {})
            out.append(ApiCall(service, api_op, tuple(acts), level if acts else UNKNOWN,
                               resources_for(hints, api_params, region), api_params))
    return tuple(out)


def parse(argv: list[str] | tuple[str, ...]) -> Invocation:
    argv = tuple(str(a) for a in argv)
    found, rest = _split_globals(list(argv))
    gopts = GlobalOptions(**{k.replace("-", "_"): v for k, v in found.items() if k in _GLOBAL_FIELDS})
    region = gopts.region

    def inv(kind: str, service: str, op: str | None, params: dict[str, Any] | None = None,
            calls: tuple[ApiCall, ...] = ()) -> Invocation:
        return Invocation(argv, kind, service, op, gopts, params or {}, calls)

    if found.get("version"):  # like awscli: --version anywhere prints the version, runs nothing
        return inv("version", "", None)
    if not rest:
        raise InvocationError("missing service: usage is `aws [options] <service> <operation> "
                              "[parameters]`")
    service = rest[0]
    if service.startswith("-"):
        raise InvocationError(f"unknown option {_show(service)} before the service name")
    if service == "help":
        return inv("help", "help", None)
    op = rest[1] if len(rest) > 1 else None
    if op == "help":
        return inv("help", service, None)

    if service == "s3":
        return _parse_s3(inv, op, rest[2:], region)
    if service in LOCAL_SERVICES:
        params, pos = _options(rest[2:])
        if service == "configure" and op is not None and op.startswith("-"):
            params, pos, op = _options(rest[1:])[0], [], None
        if service == "configure" and op is not None and op not in CONFIGURE_OPS:
            raise InvocationError(f"unknown configure operation {_show(op)}{_suggest(op, CONFIGURE_OPS)}")
        if pos[-1:] == ["help"]:
            return inv("help", service, op)
        return inv(LOCAL_SERVICES[service], service, op, params)

    data = actions.service(service)
    if data is None:
        names = [*actions.index()["services"], "s3", "configure", "history"]
        raise InvocationError(f"unknown service {_show(service)}{_suggest(service, names)}")
    if op is None or op.startswith("-"):
        raise InvocationError(f"missing operation: usage is `aws {service} <operation> "
                              f"[parameters]`; see `aws {service} help`")
    if op == "wait":
        return _parse_wait(inv, data, rest[2:], region)
    if op in data["ops"]:
        spec = data.get("pos", {}).get(op)
        params, pos = (_options(rest[2:], frozenset(spec["flags"]), frozenset(spec["multi"]))
                       if spec else _options(rest[2:]))
        if pos[-1:] == ["help"]:
            return inv("help", service, op)
        api_op = data["ops"][op]
        doc = _cli_input(params)
        api_params = _api_params(data["api"].get(api_op, [[], "", [], {}])[3], params, doc)
        if pos:
            params["_positional"] = pos
        return inv("api", service, op, params, (_api_call(data, api_op, api_params, region),))
    if op in data["custom"]:
        spec = data["custom"][op]
        params, pos = _options(rest[2:], frozenset(spec["flags"]),
                               frozenset(spec.get("multi", ())) if spec["pos"] else None)
        if pos[-1:] == ["help"]:
            return inv("help", service, op)
        _cli_input(params)
        return inv("custom", service, op, dict(params, _positional=pos) if pos else params,
                   _custom_calls(spec, service, op, params, region))
    choices = list(data["ops"]) + list(data["custom"]) + ["wait"]
    raise InvocationError(f"unknown operation {_show(op)} for service {_show(service)}{_suggest(op, choices)}")


def _parse_wait(inv: Any, data: dict[str, Any], tokens: list[str], region: str | None) -> Invocation:
    service = data["cli"]
    if not tokens or tokens[0].startswith("-"):
        if tokens[:1] == ["help"]:
            return inv("help", service, "wait")
        raise InvocationError(f"missing waiter: usage is `aws {service} wait <waiter> "
                              f"[parameters]`")
    name = tokens[0]
    if name == "help":
        return inv("help", service, "wait")
    if name not in data["waiters"]:
        raise InvocationError(f"unknown waiter {_show(name)} for service {_show(service)}"
                              f"{_suggest(name, data['waiters'])}")
    params, pos = _options(tokens[1:])
    if pos[-1:] == ["help"]:
        return inv("help", service, "wait")
    api_op = data["waiters"][name]
    doc = _cli_input(params)
    api_params = _api_params(data["api"].get(api_op, [[], "", [], {}])[3], params, doc)
    return inv("wait", service, "wait", dict(params, waiter=name),
               (_api_call(data, api_op, api_params, region),))


def _parse_s3(inv: Any, op: str | None, tokens: list[str], region: str | None) -> Invocation:
    if op is None or op.startswith("-"):
        raise InvocationError("missing operation: usage is `aws s3 <cp|mv|rm|sync|mb|rb|ls|presign|"
                              "website> ...`")
    if op not in s3cmd.COMMANDS:
        raise InvocationError(f"unknown operation {_show(op)} for service 's3'"
                              f"{_suggest(op, s3cmd.COMMANDS)}; the API operations are under "
                              f"`aws s3api`")
    spec = actions.index()["s3"].get(op, {})
    params, paths = _options(tokens, frozenset(spec.get("flags", ())), frozenset(spec.get("multi", ())))
    if paths[-1:] == ["help"]:
        return inv("help", "s3", op)
    data = actions.service("s3api")
    assert data is not None
    calls = []
    for api_op, res in s3cmd.calls(op, paths, params, _partition(region)):
        entry = data["api"].get(api_op)
        acts, level = (tuple(entry[0]), entry[1]) if entry and entry[0] else ((), UNKNOWN)
        calls.append(ApiCall("s3", api_op, acts, level, res, {}))
    return inv("s3", "s3", op, dict(params, _paths=paths) if paths else params, tuple(calls))


__all__ = ["call_for", "parse", "resources_for", "strictest"]
