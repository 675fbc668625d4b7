"""One masking vocabulary: what is secret in AWS CLI traffic, and how it is shown.

    masker = Masker(load_key(layout))
    masker.mask_parsed("secretsmanager", "GetSecretValue", parsed)   # in place, before formatting
    masker.mask_params("ssm", "PutParameter", params)                # a masked copy for records
    masker.mask_text(stdout_text); masker.mask_bytes(chunk); masker.mask_debug(stderr_text)
    StreamMasker(masker).feed(chunk) ... .close()                    # streaming output
    whole_output_secret(invocation)                                  # e.g. ecr get-login-password

A masked value becomes `[masked:<kind>:<fingerprint8>]`, the fingerprint being the first 8 hex
digits of HMAC-SHA256(per-installation key, value): equal secrets correlate, nothing is revealed.
Stdlib-only at import (runs in the shim). See docs/masking.md.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hoopcli.masking import detect, paths
from hoopcli.masking.detect import MARKER_RE, is_secret_name, kind_for_name
from hoopcli.masking.key import KEY_BYTES, KEY_FILE_NAME, load_key
from hoopcli.masking.stream import StreamMasker

if TYPE_CHECKING:
    from hoopcli.parse.invocation import Invocation

__all__ = [
    "KEY_BYTES",
    "KEY_FILE_NAME",
    "MARKER_RE",
    "WHOLE_OUTPUT_COMMANDS",
    "Masker",
    "StreamMasker",
    "load_key",
    "whole_output_secret",
]

MIN_KNOWN = 6
MAX_KNOWN = 2000  # remembered values per process (each costs one str.find per text)
_SHAPED = frozenset({"access-key-id", "principal-id", "jwt", "private-key"})
_NUMBERISH = detect.LazyPattern(r"[\d.:,+\-TZ ]+")

# Commands (CLI names) whose entire stdout is a credential.
WHOLE_OUTPUT_COMMANDS = frozenset(
    {
        ("ecr", "get-login-password"),
        ("ecr", "get-login"),
        ("ecr-public", "get-login-password"),
        ("rds", "generate-db-auth-token"),
        ("dsql", "generate-db-connect-auth-token"),
        ("dsql", "generate-db-connect-admin-auth-token"),
        ("eks", "get-token"),
        ("configure", "export-credentials"),
        ("codecommit", "credential-helper"),
    }
)
_CONFIGURE_SECRET_VAR = detect.LazyPattern(r"(?i)secret|token|password|credential")

def whole_output_secret(invocation: Invocation) -> bool:
    """True when the command's whole stdout is a secret (mask it as one marker)."""
    service = (getattr(invocation, "service", None) or "").lower()
    operation = (getattr(invocation, "operation", None) or "").lower()
    if (service, operation) in WHOLE_OUTPUT_COMMANDS:
        return True
    if service == "configure" and operation == "get":
        argv = tuple(getattr(invocation, "argv", ()) or ())
        return any(_CONFIGURE_SECRET_VAR.search(str(a)) for a in argv[2:] if not str(a).startswith("--"))
    return False


class Masker:
    """Masks secrets with keyed fingerprints. `extra`: policy paths
    [{"service": botocore name, "operation": API name, "paths": [response paths],
    "params": [parameter paths]}]. `pii=True` also masks what botocore flags as PII;
    `unique_ids=True` also masks IAM unique ids (AIDA..., AROA...)."""

    def __init__(
        self,
        key: bytes,
        extra: Iterable[Mapping[str, Any]] | None = None,
        *,
        pii: bool = False,
        unique_ids: bool = False,
    ) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
            raise ValueError("masking key must be at least 16 bytes")
        self._key = bytes(key)
        self._extra = paths.compile_extra(extra)
        self.pii = pii
        self.unique_ids = unique_ids
        self._known: dict[str, str] = {}

    # -- known values ------------------------------------------------------------------------
    def remember(self, value: Any, kind: str = "secret") -> None:
        """Mask this exact value wherever it appears later in this process's text (argv values,
        parameters and response members already masked by path). Values shorter than
        MIN_KNOWN characters are not remembered (they would mask ordinary words)."""
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "surrogateescape")
        if isinstance(value, str) and len(value) >= MIN_KNOWN and not MARKER_RE.fullmatch(value) \
                and len(self._known) < MAX_KNOWN:
            self._known.setdefault(value, kind)

    @staticmethod
    def _known_spans(text: str, known: Mapping[str, str]) -> list[detect.Span]:
        spans: list[detect.Span] = []
        for value, kind in known.items():
            start = text.find(value)
            while start != -1:
                end = start + len(value)
                # whole tokens only: "bearer" must not mask the "bearer" in "bearerToken"
                if not (value[0].isalnum() and start and text[start - 1].isalnum()) \
                        and not (value[-1].isalnum() and end < len(text) and text[end].isalnum()):
                    spans.append((start, end, kind))
                start = text.find(value, end)
        return spans

    # -- markers ---------------------------------------------------------------------------
    def fingerprint(self, value: str | bytes) -> str:
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:8]

    def marker(self, kind: str, value: str | bytes) -> str:
        return f"[masked:{kind}:{self.fingerprint(value)}]"

    # -- free text -------------------------------------------------------------------------
    def _spans(self, text: str, debug: bool) -> list[detect.Span]:
        spans = detect.find_spans(text, unique_ids=self.unique_ids, debug=debug)
        # a secret found once in this text is masked at every occurrence in it
        # (only for what was found by context, e.g. a label; shapes are found everywhere anyway)
        local = {text[a:b]: k for a, b, k in spans
                 if k not in _SHAPED and b - a >= 8 and not _NUMBERISH.fullmatch(text[a:b])}
        if local and len(local) <= 64:
            spans.extend(self._known_spans(text, local))
        if self._known:
            spans.extend(self._known_spans(text, self._known))
        return detect.merge_spans(spans)

    def _apply(self, text: str, spans: list[detect.Span]) -> str:
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end, kind in spans:
            out.append(text[pos:start])
            value = text[start:end]
            out.append(value if MARKER_RE.fullmatch(value) else self.marker(kind, value))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def mask_text(self, text: str) -> str:
        """Mask every detected secret in free text (output of any format)."""
        return self._apply(text, self._spans(text, False))

    def mask_debug(self, text: str) -> str:
        """mask_text plus --debug forms: Authorization / X-Amz-Security-Token headers, header
        dict reprs, SigV4 query strings and botocore's request/response body dumps."""
        return self._apply(text, self._spans(text, True))

    def mask_bytes(self, data: bytes, *, debug: bool = False) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        masked = self.mask_debug(text) if debug else self.mask_text(text)
        return masked.encode("utf-8", "surrogateescape")

    def mask_whole(self, text: str) -> str:
        """The whole output as one marker (for whole_output_secret commands); keeps a final
        newline so the agent's shell sees the same shape."""
        body = text.rstrip("\r\n")
        if not body:
            return text
        return self.marker("whole-output", body) + text[len(body):]

    def stream(self, *, debug: bool = False, **kw: Any) -> StreamMasker:
        return StreamMasker(self, debug=debug, **kw)

    # -- parsed responses and parameters ----------------------------------------------------
    def mask_parsed(self, service: str, operation: str, parsed: Any) -> Any:
        """Mask a botocore parsed response IN PLACE (and return it): per-operation paths, then
        secret-named members and detectors on every string."""
        self._apply_paths(service, operation, "o", parsed)
        return self._walk(parsed)

    def mask_params(self, service: str, operation: str, params: Any) -> Any:
        """A masked COPY of API parameters (the originals still go to AWS untouched)."""
        copy = _copy_containers(params)
        self._apply_paths(service, operation, "i", copy)
        return self._walk(copy)

    def mask_json_output(self, service: str, operation: str, text: str) -> str:
        """For output that was formatted elsewhere (a real aws v2 subprocess, `--output json`
        without --query): parse it, mask it like a parsed response (so per-operation paths apply,
        e.g. ecs environment values, SSM SecureString values), and print it the way the AWS CLI
        does (indent 4). Text that is not a JSON object, or that needs no masking, goes through
        mask_text and keeps its bytes."""
        import json

        stripped = text.strip()
        if not stripped.startswith("{"):
            return self.mask_text(text)
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return self.mask_text(text)
        before = json.dumps(parsed, indent=4, ensure_ascii=False, sort_keys=False)
        after = json.dumps(self.mask_parsed(service, operation, parsed), indent=4,
                           ensure_ascii=False, sort_keys=False)
        if after == before:
            return self.mask_text(text)
        return self.mask_text(after + "\n")

    def param_paths(self, service: str, operation: str) -> tuple[paths.CompiledPath, ...]:
        """The parameter paths mask_params applies for this operation."""
        return paths.paths_for(service, operation, "i", pii=self.pii, extra=self._extra)

    def _apply_paths(self, service: str, operation: str, io: str, obj: Any) -> None:
        for path in paths.paths_for(service, operation, io, pii=self.pii, extra=self._extra):
            kind = kind_for_name(_leaf(path.steps))

            def mask(value: Any, kind: str = kind) -> Any:
                return self._mask_value(value, kind)

            paths.apply_path(obj, path, mask)

    def mask_argv(self, argv: Iterable[str]) -> list[str]:
        """A masked copy of an `aws` argv (the arguments after `aws`): values of secret-named
        options in every spelling awscli accepts (`--secret-string X`, `--password=X`, `--passw X`,
        `--value X` / `--val X` with `--type SecureString` / `--ty=SecureString`), secret members
        of --cli-input-json / --cli-input-yaml documents (by the operation's input paths), then
        the detectors on every argument. Masked values are remembered, so later output (--debug
        echoes argv) is masked too."""
        args = [str(a) for a in argv]
        try:
            from hoopcli.parse.parser import option_tokens

            service, operation, names = option_tokens(args)
        except Exception:  # masking never fails a command: fall back to raw names
            service, operation, names = None, None, [None] * len(args)
        secure = any(a.lower() in ("securestring", "--type=securestring") for a in args) or any(
            n == "type" and a.lower().rpartition("=")[2] == "securestring" for a, n in zip(args, names, strict=True))
        out: list[str] = []
        for arg, name in zip(args, names, strict=True):
            if name is None:
                out.append(arg)
                continue
            is_option = arg.startswith("--") and not MARKER_RE.fullmatch(arg)
            head, eq, value = arg.partition("=") if is_option else ("", "", arg)
            if is_option and not eq:
                out.append(arg)
                continue
            if name in ("cli-input-json", "cli-input-yaml"):
                masked = self._mask_document(value, service, operation, name.endswith("yaml"))
            elif value and (by_path := self._mask_option_by_path(service, operation, name, value)) is not None:
                masked = by_path
            else:
                kind = _secret_option(name, secure)
                if kind and value:
                    self.remember(value, kind)
                    masked = self.marker(kind, value)
                else:
                    masked = value
            out.append(f"{head}={masked}" if is_option else masked)
        return [self.mask_text(a) if not MARKER_RE.fullmatch(a) else a for a in out]

    def _mask_option_by_path(self, service: str | None, operation: str | None, name: str,
                             value: str) -> str | None:
        """An option value that fills a member the operation's parameter paths mask
        (`apigateway create-api-key --value`, `ecs register-task-definition --container-definitions`
        environment values, `codebuild start-build --environment-variables-override`): a JSON value
        masked by those paths, anything else (shorthand, a scalar) masked whole. None when no path
        starts at this member, or only one conditional on another option (SSM `Value?Type=`, see
        _secret_option)."""
        if not service or not operation or value.startswith(("file://", "fileb://")):
            return None
        wanted = name.replace("-", "").lower()
        heads = [p for p in self.param_paths(service, operation)
                 if p.steps[0].replace("_", "").lower() == wanted and p.when is None]
        if not heads:
            return None
        member = heads[0].steps[0]
        if all(len(p.steps) > 1 for p in heads) and value.lstrip().startswith(("{", "[")):
            import json

            try:
                doc = json.loads(value)
            except ValueError:
                doc = None
            if doc is not None:
                masked = self.mask_params(service, operation, {member: doc})[member]
                return value if masked == doc else json.dumps(masked, separators=(",", ":"))
        return str(self._mask_value(value, "secret"))

    def _mask_document(self, text: str, service: str | None, operation: str | None, yaml_doc: bool) -> str:
        """An inline --cli-input-json/yaml document with its secret members masked (a file://
        document stays a path; the file is not recorded)."""
        import json

        if text.startswith(("file://", "fileb://")):
            return text
        try:
            if yaml_doc:
                import yaml

                doc = yaml.safe_load(text)
            else:
                doc = json.loads(text)
        except Exception:  # not a document: the detectors still scan it
            return text
        if not isinstance(doc, dict):
            return text
        secure = str(doc.get("Type", "")).lower() == "securestring"
        masked = self.mask_params(service or "", operation or "", doc)
        if secure and isinstance(masked.get("Value"), str):
            masked["Value"] = self._mask_value(masked["Value"], "secret")
        for key in list(masked):
            kind = _secret_option(_cli_name(key), secure=False)
            if kind:
                masked[key] = self._mask_value(masked[key], kind)
        return json.dumps(masked, separators=(",", ":")) if masked != doc else text

    def _mask_value(self, value: Any, kind: str) -> Any:
        if isinstance(value, str):
            if not value or MARKER_RE.fullmatch(value):
                return value
            self.remember(value, kind)
            return self.marker(kind, value)
        if isinstance(value, (bytes, bytearray)):
            self.remember(value, kind)
            return self.marker(kind, bytes(value)) if value else value
        if isinstance(value, dict):
            for key in list(value):
                value[key] = self._mask_value(value[key], kind)
            return value
        if isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = self._mask_value(item, kind)
            return value
        return value  # numbers, booleans, dates, streams: not secrets by themselves

    def _walk(self, obj: Any) -> Any:
        """Secret-named members masked; every other string scanned by the detectors in one pass
        over all strings joined (much cheaper than one scan per string)."""
        refs: list[tuple[Any, Any]] = []
        obj = self._walk_names(obj, refs)
        if refs:
            self._scan_strings(refs)
        return obj

    def _walk_names(self, obj: Any, refs: list[tuple[Any, Any]]) -> Any:
        if isinstance(obj, dict):
            items: Iterable[tuple[Any, Any]] = list(obj.items())
        elif isinstance(obj, list):
            items = list(enumerate(obj))
        elif isinstance(obj, str):
            return self.mask_text(obj)  # a bare string response
        else:
            return obj
        for key, value in items:
            if isinstance(value, str):
                if isinstance(key, str) and is_secret_name(key) and value not in detect.NOT_VALUES:
                    obj[key] = self._mask_value(value, kind_for_name(key))
                elif len(value) >= 8:
                    refs.append((obj, key))
            elif isinstance(value, (bytes, bytearray)):
                if isinstance(key, str) and is_secret_name(key) and value:
                    obj[key] = self._mask_value(value, kind_for_name(key))
            elif isinstance(value, (dict, list)):
                self._walk_names(value, refs)
        return obj

    def _scan_strings(self, refs: list[tuple[Any, Any]]) -> None:
        strings = [container[key] for container, key in refs]
        starts: list[int] = []
        pos = 0
        for text in strings:
            starts.append(pos)
            pos += len(text) + 2
        joined = "\n\n".join(strings)
        spans = self._spans(joined, False)
        if not spans:
            return
        per: dict[int, list[detect.Span]] = {}
        for start, end, kind in spans:
            i = bisect.bisect_right(starts, start) - 1
            while i < len(strings) and starts[i] < end:
                lo = max(start, starts[i]) - starts[i]
                hi = min(end, starts[i] + len(strings[i])) - starts[i]
                if hi > lo:
                    per.setdefault(i, []).append((lo, hi, kind))
                i += 1
        for i, local in per.items():
            container, key = refs[i]
            container[key] = self._apply(strings[i], local)


def _cli_name(member: str) -> str:
    """SecretString -> secret-string (the option spelling of an API member, for _secret_option)."""
    out = []
    for i, ch in enumerate(member):
        if ch.isupper() and i and not member[i - 1].isupper():
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _secret_option(name: str, secure: bool) -> str | None:
    """The marker kind for a CLI option whose value is a secret, else None."""
    member = "".join(part.capitalize() for part in name.split("-"))
    if name == "value" and secure:
        return "secret"
    if name in _SECRET_OPTIONS or is_secret_name(member):
        return kind_for_name(member)
    return None


_SECRET_OPTIONS = frozenset({"secret-string", "secret-binary", "plaintext", "environment",
                             "auth-parameters", "challenge-responses", "connection-input"})


def _leaf(steps: tuple[str, ...]) -> str:
    for step in reversed(steps):
        if step not in ("*", "[]"):
            return step
    return ""


def _copy_containers(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _copy_containers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_copy_containers(v) for v in obj]
    return obj

