"""`--debug` log records masked where they are made, by the operation's own paths.

awscli's `--debug` makes botocore log each request's parameters ("Making request for ... with
params: {... 'body': ...}") and each response body ("Response body: b'...'"). A secret under a
generic member name (Lambda `Environment.Variables`, ECS `environment[].value`, API Gateway
`value`) has no label the text detectors know, so these dumps are masked here by the same
per-operation paths as the parsed output:

    log = DebugLog(masker, parse_response)   # parse_response(operation_model, response_dict) -> parsed
    log.install()                            # every log record made from now on is masked
    log.note_call(context, service, operation, masked_params, changed_members)  # before-parameter-build
    events.register("before-parse", log.expect_response_event)
    log.uninstall()

Every record made while installed is masked when it is created (a log record factory), whatever
handler or stream it goes to and however `--debug` was spelled. A request body that carried a
masked parameter is shown as the masked parameters; a response body in which masking hid anything
is shown as the masked parsed response; a body that cannot be checked is withheld with a
placeholder (fail closed). Everything else goes through `Masker.mask_debug`. Stdlib only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REQUEST_DUMP = "Making request for %s with params: %s"
RESPONSE_DUMPS = ("Response body:\n%r", "Error found for response with 200 status code: %s.")
ARGV_DUMP = "Arguments entered to CLI: %s"
ARGUMENT_DUMP = 'Unpacked value of %r for parameter "%s": %r'
WITHHELD_LINE = "hoop: a debug log line was withheld (it could not be masked)"
_LOCATIONS_IN_URL = {"uri": ("url_path", "url"), "querystring": ("query_string", "url")}


class Shown:
    """A stand-in value whose repr is `text` (how a withheld or masked body appears in a dump)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class CallNote:
    """What the debug log may show of one API call's parameters (kept in botocore's request
    context; its repr shows nothing)."""

    __slots__ = ("service", "operation", "masked", "changed")

    def __init__(self, service: str, operation: str, masked: Mapping[str, Any], changed: Iterable[str]) -> None:
        self.service = service
        self.operation = operation
        self.masked = masked
        self.changed = frozenset(changed)

    def __repr__(self) -> str:
        return "<hoop call note>"


def changed_members(params: Mapping[str, Any], masked: Mapping[str, Any]) -> list[str]:
    """Top-level parameters that masking changed (their values must not appear in a dump)."""
    return [key for key in params if key not in masked or masked[key] != params[key]]


def as_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(", ", ": "))


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return f"<{type(value).__name__}>"


class DebugLog:
    """Masks every log record made in this process while installed (see the module docstring)."""

    def __init__(self, masker: Any, parse_response: Callable[[Any, Any], Any]) -> None:
        self.masker = masker
        self.parse_response = parse_response
        self._local = threading.local()
        self._previous: Callable[..., logging.LogRecord] | None = None
        self._quiet = _QuietWhileParsing(self._local)

    # -- installation ---------------------------------------------------------------------------
    def install(self) -> None:
        self._previous = logging.getLogRecordFactory()
        logging.setLogRecordFactory(self._make_record)
        logging.getLogger("botocore.parsers").addFilter(self._quiet)

    def uninstall(self) -> None:
        logging.getLogger("botocore.parsers").removeFilter(self._quiet)
        if self._previous is not None and logging.getLogRecordFactory() == self._make_record:
            logging.setLogRecordFactory(self._previous)
        self._previous = None

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = (self._previous or logging.LogRecord)(*args, **kwargs)
        if not getattr(self._local, "parsing", False):
            self.mask_record(record)
        return record

    # -- what the runner tells us -----------------------------------------------------------------
    def note_call(self, context: dict[str, Any], service: str, operation: str,
                  masked: Mapping[str, Any], changed: Iterable[str]) -> None:
        context["hoop_debug"] = CallNote(service, operation, masked, changed)

    def expect_response(self, operation_model: Any, response_dict: Any) -> None:
        self._local.response = (operation_model, response_dict)

    def expect_operation_event(self, operation_model: Any = None, **_: Any) -> None:
        """awscli's `building-argument-table` handler: the operation whose arguments come next."""
        self._local.operation = operation_model

    def expect_response_event(self, operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
        """botocore's `before-parse` handler: the response about to be parsed (and dumped)."""
        self.expect_response(operation_model, response_dict)

    # -- masking one record -----------------------------------------------------------------------
    def mask_record(self, record: logging.LogRecord) -> None:
        """Replace the record's message by its masked text (args formatted in); on any failure the
        line is withheld. Tracebacks and stacks attached to the record are masked too."""
        try:
            text = self._masked_message(record)
            exc_text = stack = None
            if record.exc_info:
                exc_text = self.masker.mask_debug(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                stack = self.masker.mask_debug(record.stack_info)
        except Exception:
            text, exc_text, stack = WITHHELD_LINE, None, None
            record.exc_info = None
        record.msg, record.args = text, ()
        record.exc_text, record.stack_info = exc_text, stack

    def _masked_message(self, record: logging.LogRecord) -> str:
        msg, args = record.msg, record.args
        if isinstance(msg, str) and isinstance(args, tuple):
            if msg == REQUEST_DUMP and len(args) == 2:
                args = (args[0], self._request_view(args[0], args[1]))
            elif msg in RESPONSE_DUMPS and len(args) == 1:
                shown = self._response_view(args[0])
                if isinstance(shown, str):
                    return shown
                args = (shown,)
            elif msg == ARGV_DUMP and len(args) == 1 and isinstance(args[0], list):
                args = (self.masker.mask_argv(args[0]),)
            elif msg == ARGUMENT_DUMP and len(args) == 3:
                args = self._argument_view(*args)
            else:
                args = tuple(_withhold_bodies(a) for a in args)
        elif isinstance(args, Mapping):
            args = {k: _withhold_bodies(v) for k, v in args.items()}
        text = str(msg) % args if args else str(msg)
        return str(self.masker.mask_debug(text))

    def _request_view(self, operation_model: Any, request_dict: Any) -> Any:
        """The request dict as the dump may show it: unchanged when masking found nothing in the
        parameters; otherwise the body is replaced by the masked parameters, and the URL or headers
        are withheld when a masked parameter is sent there."""
        if not isinstance(request_dict, Mapping):
            return _withhold_bodies(request_dict)
        context = request_dict.get("context")
        note = context.get("hoop_debug") if isinstance(context, Mapping) else None
        view = dict(request_dict)
        if not isinstance(note, CallNote):
            if _has_body(view.get("body")):
                view["body"] = Shown("<hoop: request body withheld: its parameters were not seen>")
            return view
        if not note.changed:
            return view
        body_members = {}
        for key, value in note.masked.items():
            location = _location(operation_model, key)
            if location is None:
                body_members[key] = value
            elif key in note.changed:
                for field in _LOCATIONS_IN_URL.get(location, ("headers", "url_path", "query_string", "url")):
                    view[field] = Shown(f"<hoop: withheld: carries the masked parameter {key}>")
        if _has_body(view.get("body")):
            view["body"] = Shown("<hoop: request body withheld; its parameters, masked: "
                                 f"{as_json(body_members)}>")
        return view

    def _argument_view(self, value: Any, py_name: Any, unpacked: Any) -> tuple[Any, Any, Any]:
        """awscli's dump of one parsed argument: shown masked by the operation's parameter paths;
        withheld when the operation or the member is unknown, or a path has a condition on
        another parameter (it cannot be checked on one argument alone)."""
        withheld = Shown("<hoop: withheld>")
        operation_model = getattr(self._local, "operation", None)
        member = _member_for(operation_model, str(py_name))
        if operation_model is None or member is None:
            return withheld, py_name, withheld
        service, operation = operation_model.service_model.service_name, operation_model.name
        paths = self.masker.param_paths(service, operation)
        if any(p.steps[0] == member and p.when is not None for p in paths):
            return withheld, py_name, withheld
        masked = self.masker.mask_params(service, operation, {member: unpacked})
        if masked.get(member) != unpacked:
            return withheld, py_name, masked.get(member)
        return value, py_name, unpacked

    def _response_view(self, body: Any) -> Any:
        """A response body dump: the raw body when masking the parsed response changes nothing;
        otherwise the masked parsed response (a whole message); withheld when it cannot be
        checked."""
        expected = getattr(self._local, "response", None)
        if not isinstance(body, (bytes, bytearray, str)):
            return body  # a stream: its repr shows no content
        if not body:
            return body
        size = len(body)
        if expected is None or not isinstance(expected[1], Mapping) or expected[1].get("body") is not body:
            return Shown(f"<hoop: response body withheld ({size} bytes): no operation to mask it by>")
        operation_model, response_dict = expected
        service = operation_model.service_model.service_name
        self._local.parsing = True
        try:
            parsed = self.parse_response(operation_model, response_dict)
        except Exception:
            parsed = None
        finally:
            self._local.parsing = False
        if not isinstance(parsed, dict):
            return Shown(f"<hoop: response body withheld ({size} bytes): it could not be parsed to mask it>")
        parsed.pop("ResponseMetadata", None)
        before = as_json(parsed)
        after = as_json(self.masker.mask_parsed(service, operation_model.name, parsed))
        if before == after:
            return body
        return f"Response body (masked by hoop, shown as parsed):\n{after}"


class _QuietWhileParsing(logging.Filter):
    """Drops botocore.parsers' own records while DebugLog parses a body again to mask it."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._local, "parsing", False)


def _has_body(body: Any) -> bool:
    if isinstance(body, (bytes, bytearray, str, dict, list)):
        return bool(body)
    return body is not None


def _member_for(operation_model: Any, py_name: str) -> str | None:
    """The input member an awscli argument (`container_definitions`) fills, or None."""
    try:
        members = operation_model.input_shape.members
    except Exception:
        return None
    wanted = py_name.replace("_", "").replace("-", "").lower()
    found = [m for m in members if m.replace("_", "").replace("-", "").lower() == wanted]
    return found[0] if len(found) == 1 else None


def _location(operation_model: Any, member: str) -> str | None:
    """Where a top-level input member is sent: None for the body, else "uri", "querystring",
    "header" or "headers"; "unknown" when the model cannot say (treated as anywhere)."""
    try:
        shape = operation_model.input_shape.members[member]
    except Exception:
        return "unknown"
    location = shape.serialization.get("location")
    return str(location) if location else None


def _withhold_bodies(value: Any) -> Any:
    """For records of no known shape: raw bytes and a mapping's `body` are withheld."""
    if isinstance(value, (bytes, bytearray)) and value:
        return Shown(f"<hoop: {len(value)} bytes withheld>")
    if isinstance(value, Mapping) and _has_body(value.get("body")) and \
            not isinstance(value.get("body"), Shown):
        shown = dict(value)
        shown["body"] = Shown("<hoop: body withheld>")
        return shown
    return value
