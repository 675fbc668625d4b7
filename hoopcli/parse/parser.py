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
from hoopcli.parse.invocation import UNKNOWN, ApiCall, GlobalOptions, Invocation, partition_of, strictest

# Global options taking a value, and switches, as awscli v1 and v2 accept them.
GLOBAL_VALUES = {"profile", "region", "endpoint-url", "output", "query", "ca-bundle",
                 "cli-read-timeout", "cli-connect-timeout", "color", "cli-binary-format"}
GLOBAL_FLAGS = {"debug", "no-verify-ssl", "no-paginate", "no-sign-request", "version",
                "no-cli-pager", "cli-auto-prompt", "no-cli-auto-prompt", "v2-debug"}
GLOBAL_CHOICES = {"color": ("on", "off", "auto"),
                  "output": ("json", "text", "table", "yaml", "yaml-stream")}  # v1's, plus v2's yaml
_GLOBALS = GLOBAL_VALUES | GLOBAL_FLAGS
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


def _looks_like_value(tok: str) -> bool:
    """What argparse takes as a value rather than an option: anything not starting with `-`,
    a lone `-`, a negative number, or (when it names no option) a string with a space."""
    if not tok.startswith("-") or tok == "-":
        return True
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _match(tok: str, names: Any) -> tuple[str, str | None] | None:
    """(option name, explicit value or None) that `tok` means among `names`, the way argparse
    reads it (allow_abbrev, as awscli's parsers do): an exact `--name`, `--name=value`, or an
    unambiguous prefix `--na` / `--na=value`. None when it names none of them; an
    InvocationError when the prefix is ambiguous (awscli refuses it too)."""
    if not tok.startswith("--") or len(tok) <= 2:
        return None
    body = tok[2:]
    if body in names:
        return body, None
    head, eq, value = body.partition("=")
    if eq and head in names:
        return head, value
    if not head:
        return None
    found = [n for n in names if n.startswith(head)]
    if len(found) == 1:
        return found[0], value if eq else None
    if len(found) > 1:
        raise InvocationError(f"ambiguous option: --{head[:64]} could match "
                              f"{', '.join('--' + n for n in sorted(found))}")
    return None


def _split_globals(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Global options anywhere on the line, abbreviated or not, like awscli's main parser (which
    reads the whole line before the service's parser sees what is left)."""
    found: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":  # argparse: everything after is positional
            rest.extend(argv[i:])
            break
        hit = _match(tok, _GLOBALS)
        if hit is not None:
            name, value = hit
            if name in GLOBAL_FLAGS:
                if value is not None:
                    raise InvocationError(f"--{name} takes no value")
                found[name] = True
                i += 1
                continue
            if value is None:
                if i + 1 >= len(argv) or not _looks_like_value(argv[i + 1]):
                    raise InvocationError(f"--{name} needs a value")
                i += 1
                value = argv[i]
            if name in GLOBAL_CHOICES and value not in GLOBAL_CHOICES[name]:
                raise InvocationError(f"--{name}: invalid choice {_show(value)} (choose from "
                                      f"{', '.join(GLOBAL_CHOICES[name])})")
            if name == "endpoint-url" and "://" not in value:  # awscli: "scheme is missing"
                raise InvocationError(f"--endpoint-url: bad value {_show(value)}: scheme is missing; "
                                      f"use a full URL such as https://host")
            found[name] = value
            i += 1
            continue
        rest.append(tok)
        i += 1
    return found, rest


def _argparse(tokens: list[str], spec: dict[str, str], positional: bool = False
              ) -> tuple[dict[str, Any], list[str]]:
    """`--name value...` pairs and bare positionals read with awscli's argument table of the
    command (``generate.argspec``): abbreviations, `--name=value`, value counts and switches as
    argparse reads them. Options the table lacks (a newer CLI's) keep the old reading: they take
    the following values (one, when the command has positional arguments)."""
    params: dict[str, Any] = {}
    positionals: list[str] = []

    def put(name: str, value: Any) -> None:
        params.pop(name, None)  # the last one wins, and its place is its last use
        params[name] = value

    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok == "--":
            positionals.extend(tokens[i + 1:])
            break
        hit = _match(tok, spec)
        if hit is None:
            if _looks_like_value(tok) or " " in tok or not tok.startswith("--"):
                positionals.append(tok)
                i += 1
                continue
            name, eq, value = tok[2:].partition("=")
            if eq:
                put(name, value)
            else:
                values: list[str] = []
                while i + 1 < n and _looks_like_value(tokens[i + 1]) and not (positional and values):
                    i += 1
                    values.append(tokens[i])
                put(name, True if not values else values[0] if len(values) == 1 else values)
            i += 1
            continue
        name, explicit = hit
        kind = spec[name][:1]
        i += 1
        if kind in ("T", "F", "0"):
            if explicit is not None:
                raise InvocationError(f"--{name} takes no value (got {_show(explicit)})")
            put(name, True)
            continue
        if explicit is not None:
            values = [explicit]
        elif kind in ("1", "a", "?"):
            values = tokens[i:i + 1] if i < n and _looks_like_value(tokens[i]) else []
            i += len(values)
        else:
            values = []
            while i < n and _looks_like_value(tokens[i]):
                values.append(tokens[i])
                i += 1
        if not values and kind in ("1", "a", "+"):
            raise InvocationError(f"--{name} needs a value")
        if kind == "a":
            prev = params.get(name)
            put(name, [*(prev if isinstance(prev, list) else []), values[0]])
        elif kind == "?":
            put(name, values[0] if values else True)
        elif kind in ("*", "+"):
            put(name, values)
        else:
            put(name, values[0])
    return params, positionals


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


def resources_for(hints: list[Any], params: dict[str, Any], region: str | None) -> tuple[str, ...]:
    """Fill the resource hints of an API operation from its (API-named) parameters. A member
    given in a form hoop cannot name (a file:// value) leaves the resources unknown: filling a
    narrower hint without it would name a wider resource than the call's."""
    for _template, members in hints:
        for m in members:
            if m in params and not _names(params[m]):
                return ()
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
        filled = [template.replace("{partition}", partition_of(region))
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


_CUSTOM_ROLES = {("cloudformation", "deploy"), ("emr", "create-cluster"), ("emr", "add-steps")}   # dependent.CUSTOM_ROLE_OPTIONS, without the import
_DEPENDENT_MEMBERS = ("TagSpecifications", "SSEKMSKeyId", "IamInstanceProfile")


def _may_depend(call: ApiCall) -> bool:
    """Whether a call has a parameter a dependent action can come from (a role, tag
    specifications, a KMS key): only then is hoopcli.parse.dependent imported."""
    if (call.service, call.operation) in _NESTED_ROLES:
        return True
    return any(m in _DEPENDENT_MEMBERS or m.lower().endswith(("role", "rolearn", "rolename"))
               for m in call.params)


# Operations whose role sits inside a structure (dependent.ROLE_PARAMS paths with a dot).
_NESTED_ROLES = {("glue", "UpdateJob"), ("events", "PutTargets"), ("scheduler", "CreateSchedule"),
                 ("scheduler", "UpdateSchedule"), ("batch", "RegisterJobDefinition"),
                 ("codepipeline", "CreatePipeline"), ("codepipeline", "UpdatePipeline"),
                 ("ec2", "RequestSpotInstances")}


def _with_dependents(calls: tuple[ApiCall, ...], region: str | None) -> tuple[ApiCall, ...]:
    if not any(c.params and _may_depend(c) for c in calls):
        return calls
    from hoopcli.parse.dependent import with_dependents

    return with_dependents(calls, region)


def call_for(service: str, operation: str, params: dict[str, Any], region: str | None = None
             ) -> ApiCall:
    cli = actions.cli_name_for(service)
    data = actions.service(cli, sdk=True) if cli else None
    if data is None:
        return ApiCall(service, operation, (), UNKNOWN, (), dict(params))
    return _api_call(data, operation, dict(params), region)


def _api_params(cli_map: dict[str, str], params: dict[str, Any], doc: dict[str, Any],
                spec: dict[str, str] | None = None) -> dict[str, Any]:
    """The API parameters an invocation sends: the --cli-input-json/yaml document, then every
    option awscli maps to a member (`spec`: its argument table; `--no-enable` is Enable=false),
    in the order given. Without a table, the options `cli_map` names."""
    api = dict(doc)
    if spec is not None:
        for option, value in params.items():
            code = spec.get(option)
            if not code or len(code) < 2:
                continue
            kind, member = code[0], code[1:]
            if kind == "T":
                api[member] = True
            elif kind == "F":
                api[member] = False
            elif value is not True:
                api[member] = value
        return api
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


def command_words(argv: list[str] | tuple[str, ...]) -> list[str]:
    """The words left once the global options are taken out (service, operation, ...)."""
    try:
        return _split_globals(list(argv))[1]
    except InvocationError:
        return []


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
        from hoopcli.parse.aliases import alias_names

        if service in alias_names():
            raise InvocationError(
                f"{_show(service)} is an alias in ~/.aws/cli/alias; hoop does not expand aliases: "
                f"run the command it stands for")
        names = [*actions.index()["services"], "s3", "configure", "history"]
        raise InvocationError(f"unknown service {_show(service)}{_suggest(service, names)}")
    if op is None or op.startswith("-"):
        raise InvocationError(f"missing operation: usage is `aws {service} <operation> "
                              f"[parameters]`; see `aws {service} help`")
    if op == "wait":
        return _parse_wait(inv, data, rest[2:], region)
    if op in data["ops"]:
        argspec = data.get("args", {}).get(op)
        spec = data.get("pos", {}).get(op)
        if argspec:
            params, pos = _argparse(rest[2:], argspec, spec is not None)
        else:
            params, pos = (_options(rest[2:], frozenset(spec["flags"]), frozenset(spec["multi"]))
                           if spec else _options(rest[2:]))
        if pos[-1:] == ["help"]:
            return inv("help", service, op)
        api_op = data["ops"][op]
        doc = _cli_input(params)
        api_params = _api_params(data["api"].get(api_op, [[], "", [], {}])[3], params, doc, argspec)
        if pos:
            params["_positional"] = pos
        call = _api_call(data, api_op, api_params, region)
        return inv("api", service, op, params, _with_dependents((call,), region))
    if op in data["custom"]:
        spec = data["custom"][op]
        params, pos = (_argparse(rest[2:], spec["args"], bool(spec["pos"])) if spec.get("args") else
                       _options(rest[2:], frozenset(spec["flags"]),
                                frozenset(spec.get("multi", ())) if spec["pos"] else None))
        if pos[-1:] == ["help"]:
            return inv("help", service, op)
        _cli_input(params)
        calls = _custom_calls(spec, service, op, params, region)
        if (service, op) in _CUSTOM_ROLES:
            from hoopcli.parse.dependent import custom_dependents

            calls = custom_dependents(service, op, params, calls, region)
        return inv("custom", service, op, dict(params, _positional=pos) if pos else params, calls)
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
    argspec = data.get("wargs", {}).get(name)
    params, pos = _argparse(tokens[1:], argspec) if argspec else _options(tokens[1:])
    if pos[-1:] == ["help"]:
        return inv("help", service, "wait")
    api_op = data["waiters"][name]
    doc = _cli_input(params)
    api_params = _api_params(data["api"].get(api_op, [[], "", [], {}])[3], params, doc, argspec)
    return inv("wait", service, "wait", dict(params, waiter=name),
               _with_dependents((_api_call(data, api_op, api_params, region),), region))


def _parse_s3(inv: Any, op: str | None, tokens: list[str], region: str | None) -> Invocation:
    if op is None or op.startswith("-"):
        raise InvocationError("missing operation: usage is `aws s3 <cp|mv|rm|sync|mb|rb|ls|presign|"
                              "website> ...`")
    if op not in s3cmd.COMMANDS:
        raise InvocationError(f"unknown operation {_show(op)} for service 's3'"
                              f"{_suggest(op, s3cmd.COMMANDS)}; the API operations are under "
                              f"`aws s3api`")
    spec = actions.index()["s3"].get(op, {})
    params, paths = (_argparse(tokens, spec["args"], True) if spec.get("args") else
                     _options(tokens, frozenset(spec.get("flags", ())), frozenset(spec.get("multi", ()))))
    if paths[-1:] == ["help"]:
        return inv("help", "s3", op)
    data = actions.service("s3api")
    assert data is not None
    calls = []
    for api_op, res in s3cmd.calls(op, paths, params, partition_of(region)):
        entry = data["api"].get(api_op)
        acts, level = (tuple(entry[0]), entry[1]) if entry and entry[0] else ((), UNKNOWN)
        calls.append(ApiCall("s3", api_op, acts, level, res, {}))
    found = tuple(calls)
    if "sse-kms-key-id" in params:
        from hoopcli.parse.dependent import s3_dependents

        found = s3_dependents(found, params, region)
    return inv("s3", "s3", op, dict(params, _paths=paths) if paths else params, found)


__all__ = ["call_for", "parse", "resources_for", "strictest"]


def option_tokens(argv: list[str] | tuple[str, ...]
                  ) -> tuple[str | None, str | None, list[str | None]]:
    """(botocore service, API operation, or None; for each token of argv: the full option name it spells or whose
    value it is, else None), read with the same tables as parse(): the masker uses it to find
    secret values in every spelling (`--val`, `--ty=SecureString`, `--secret-s=...`)."""
    args = [str(a) for a in argv]
    names: list[str | None] = [None] * len(args)
    rest: list[int] = []
    i = 0
    while i < len(args):
        try:
            hit = _match(args[i], _GLOBALS)
        except InvocationError:
            hit = None
        if hit is not None:
            names[i] = hit[0]
            if hit[0] in GLOBAL_VALUES and hit[1] is None and i + 1 < len(args):
                i += 1
                names[i] = hit[0]
            i += 1
            continue
        rest.append(i)
        i += 1
    words = [args[j] for j in rest]
    spec: dict[str, str] = {}
    api_op = boto = None
    data = actions.service(words[0]) if len(words) > 1 and words[0] != "s3" else None
    if data is not None and len(words) > 1:
        op = words[1]
        if op in data["ops"]:
            spec = data.get("args", {}).get(op) or {}
            api_op, boto = data["ops"][op], data["service"]
        elif op in data["custom"]:
            spec = data["custom"][op].get("args") or {}
        elif op == "wait" and len(words) > 2:
            spec = data.get("wargs", {}).get(words[2]) or {}
    elif words[:1] == ["s3"] and len(words) > 1:
        spec = actions.index()["s3"].get(words[1], {}).get("args") or {}
    current: str | None = None
    for j in rest:
        tok = args[j]
        if tok.startswith("--") and len(tok) > 2 and not _looks_like_value(tok):
            try:
                hit = _match(tok, spec)
            except InvocationError:
                hit = None
            name = hit[0] if hit else tok[2:].partition("=")[0]
            names[j] = name
            kind = spec.get(name, "1")[:1] if hit else "1"
            current = None if kind in ("T", "F", "0") or "=" in tok else name
            continue
        if current is not None:
            names[j] = current
    return boto, api_op, names
