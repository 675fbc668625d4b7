"""The credential broker: STS AssumeRole for one invocation, narrowed by a session policy.

The server calls STS with its own AWS credentials (the standard boto3 chain, or the session
app.state.aws_session holds). The role session is named after the hoop session, carries the
user as SourceIdentity, lasts the connection's duration, and carries an inline session policy
that allows only the invocation's IAM actions (on its resources when they are known ARNs), so
the effective permissions are the intersection of the role's and the command's.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hoopcli.errors import HoopError, Unavailable

if TYPE_CHECKING:
    from hoopcli.parse.invocation import Invocation
    from hoopcli.server.settings import Connection

STS_NAME_RE = re.compile(r"[^\w+=,.@-]")
MAX_PACKED_POLICY = 2048  # STS limit on the plaintext session policy
STS_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10}


class BrokerError(HoopError):
    """STS refused the request (role, trust policy, limits): the server's configuration is wrong."""


class ScopeUnbounded(BrokerError):
    """The session policy cannot be bounded to the command's resources: hoop refuses to widen it
    to Resource "*" (a file:// value, a name that is not an ARN, or a policy past STS's limit)."""


def sts_name(value: str, prefix: str = "", max_len: int = 64) -> str:
    """Squeeze `value` into STS's name charset ([\\w+=,.@-]) and length (2..max_len)."""
    cleaned = STS_NAME_RE.sub("-", value)
    name = (prefix + cleaned)[:max_len]
    return name if len(name) >= 2 else (name + "--")[:2]


# KMS calls S3 makes on the caller's behalf for SSE-KMS objects whose key the command does not
# name (reads; writes under the bucket's default key): without them a narrowed policy breaks
# them. Allowed only through S3 (kms:ViaService), for the objects the S3 statements allow. A key
# the command names (--sse-kms-key-id) is a dependent action on that key instead.
S3_KMS_DEPENDENCIES = {
    "s3:GetObject": ("kms:Decrypt",),
    "s3:GetObjectVersion": ("kms:Decrypt",),
    "s3:PutObject": ("kms:Decrypt", "kms:GenerateDataKey"),
}


def _kms_via_s3(actions: set[str]) -> dict[str, Any] | None:
    needed = sorted({dep for a in actions for dep in S3_KMS_DEPENDENCIES.get(a, ())})
    if not needed:
        return None
    return {
        "Effect": "Allow",
        "Action": needed,
        "Resource": "*",
        "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
    }


def _resource_scoped(call: Any) -> bool:
    """Whether hoop's index knows resource ARNs for this call's operation (then a call without
    them is one hoop could not bound, not one that has no resource)."""
    from hoopcli.parse import index

    cli = index.cli_name_for(call.service)
    data = index.service(cli) if cli else None
    entry = data["api"].get(call.operation) if data else None
    return bool(entry and entry[2])


def _as_arn(resource: str, region: str | None, service: str = "") -> str:
    """Resource names some services use instead of ARNs, as their ARN: an SQS queue URL, an SSM
    parameter name (account `*`: the role bounds it); anything else as is."""
    from urllib.parse import urlsplit

    if not isinstance(resource, str) or resource.startswith("arn:"):
        return resource
    if service == "ssm" and resource and "*" not in resource and "?" not in resource:
        where = region or "*"
        partition = "aws-cn" if where.startswith("cn-") else "aws-us-gov" if where.startswith("us-gov-") else "aws"
        return f"arn:{partition}:ssm:{where}:*:parameter/{resource.lstrip('/')}"
    if not resource.startswith(("https://", "http://")):
        return resource
    url = urlsplit(resource)
    parts = [p for p in url.path.split("/") if p]
    if len(parts) != 2 or not parts[0].isdigit():
        return resource
    host = (url.hostname or "").split(".")
    where = host[1] if len(host) > 3 and host[0] in ("sqs", "queue") else (region or "*")
    if host[:1] != ["sqs"] and len(host) > 3 and host[1] == "queue":  # eu-west-1.queue.amazonaws.com
        where = host[0]
    partition = "aws-cn" if where.startswith("cn-") else "aws-us-gov" if where.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sqs:{where}:{parts[0]}:{parts[1]}"


def _dependent_statements(invocation: Invocation) -> tuple[list[dict[str, Any]], set[str]]:
    """Statements for the dependent actions (hoopcli.parse.dependent), each on its exact
    resources, and the S3 actions whose KMS key is named (no generic KMS statement for them).
    A dependent action hoop could not bound (an instance profile, a KMS alias) raises
    ScopeUnbounded with the parser's reason: never Resource "*"."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    keyed: set[str] = set()
    for call in invocation.api_calls:
        if call.dependent_of is None:
            continue
        action = call.actions[0] if call.actions else ""
        if not call.resources or not all(r.startswith("arn:") for r in call.resources):
            raise ScopeUnbounded(
                f"cannot bound {action} (needed by {call.dependent_of}) to resource ARNs: "
                f"{call.note or 'no resource derived'}; hoop does not widen a session policy to "
                f"every resource",
                hint="name the resource directly on the command line, or use a connection with "
                     "credentials: gateway, where the server decides each request")
        condition: dict[str, Any] | None = None
        if action == "ec2:CreateTags":  # only while the call itself creates the resources
            condition = {"StringEquals": {"ec2:CreateAction": call.dependent_of}}
        elif action.startswith("kms:") and call.dependent_of in S3_KMS_OPERATIONS:
            condition = {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
            keyed.add("s3:PutObject")
        key = (json.dumps(sorted(call.resources)), json.dumps(condition, sort_keys=True))
        statement = grouped.setdefault(key, {"Effect": "Allow", "Action": [],
                                             "Resource": sorted(call.resources)})
        if condition is not None:
            statement["Condition"] = condition
        if action not in statement["Action"]:
            statement["Action"].append(action)
    for statement in grouped.values():
        statement["Action"].sort()
    return list(grouped.values()), keyed


S3_KMS_OPERATIONS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


def session_policy(invocation: Invocation) -> dict[str, Any]:
    """An IAM policy allowing exactly the invocation's actions, per API call, on its ARNs.

    Never Resource "*" by accident (issue 15): "*" only for calls whose operation names no
    resource (ListQueues, ListAllMyBuckets); a call hoop cannot bound to ARNs (a file:// value,
    a bare name) or a policy past STS's size limit raises ScopeUnbounded instead of widening.
    Dependent actions (iam:PassRole, ec2:CreateTags, KMS for an SSE-KMS key) get statements of
    their own, on their exact resources (see _dependent_statements)."""
    statements: list[dict[str, Any]] = []
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for call in invocation.api_calls:
        if not call.actions or call.dependent_of is not None:
            continue
        named = tuple(_as_arn(r, invocation.globals.region, call.service) for r in call.resources)
        arns = tuple(r for r in named if r.startswith("arn:"))
        if arns and len(arns) == len(call.resources):
            resources = arns
        elif not call.resources and not _resource_scoped(call):
            resources = ("*",)
        else:
            shown = ", ".join(call.resources[:3]) or "none derived"
            raise ScopeUnbounded(
                f"cannot bound {', '.join(call.actions)} ({call.operation}) to resource ARNs "
                f"({shown}); hoop does not widen a session policy to every resource",
                hint="name the resource directly (not through file:// or a bare name), or use a "
                     "connection with credentials: gateway, where the server decides each request")
        bucket = by_resources.setdefault(resources, [])
        for action in call.actions:
            if action not in bucket:
                bucket.append(action)
    for resources, actions in by_resources.items():
        if actions:
            statements.append({
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": list(resources) if resources != ("*",) else "*",
            })
    dependent, keyed = _dependent_statements(invocation)
    all_actions = {a for call in invocation.api_calls if call.dependent_of is None
                   for a in call.actions} - keyed
    kms = _kms_via_s3(all_actions)
    extra = [kms] if kms else []
    policy = {"Version": "2012-10-17", "Statement": statements + dependent + extra}
    if len(_compact(policy)) > MAX_PACKED_POLICY:
        # Past STS's limit (many ARNs, or one crafted long name): fail closed. Widening to
        # Resource "*" would let the command's actions reach every resource the role can.
        raise ScopeUnbounded(
            f"the session policy for this command ({len(_compact(policy))} bytes) is longer than "
            f"STS allows ({MAX_PACKED_POLICY}); hoop does not widen it to every resource",
            hint="split the command into smaller ones (fewer resources each), or use a connection "
                 "with credentials: gateway")
    return policy


def _compact(policy: dict[str, Any]) -> str:
    return json.dumps(policy, separators=(",", ":"))


@dataclass(frozen=True)
class Vended:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    assumed_role_arn: str
    sts_session_name: str
    region: str
    endpoint_url: str | None

    def __repr__(self) -> str:  # the secret never reaches a log through repr()
        return f"Vended(assumed_role_arn={self.assumed_role_arn!r}, expiration={self.expiration.isoformat()})"

    def response(self) -> dict[str, Any]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "expiration": self.expiration.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "assumed_role_arn": self.assumed_role_arn,
            "sts_session_name": self.sts_session_name,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
        }


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def sts_client(connection: Connection, aws_session: Any = None) -> Any:
    """A cached STS client per (credentials source, region, endpoint): building one loads the
    service model (~100 ms); botocore clients are thread-safe and refresh their credentials."""
    import boto3
    from botocore.config import Config

    key = (id(aws_session), connection.region, connection.endpoint_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            session = aws_session or boto3.session.Session()
            config = Config(retries={"max_attempts": 2, "mode": "standard"}, **STS_TIMEOUTS)
            client = session.client(
                "sts", region_name=connection.region, endpoint_url=connection.endpoint_url, config=config
            )
            if len(_clients) > 64:
                _clients.clear()
            _clients[key] = (aws_session, client)  # hold the session so its id stays unique
            return client
        return client[1]


def assume_role(
    connection: Connection,
    invocation: Invocation | None,
    *,
    session_id: str,
    user: str,
    aws_session: Any = None,
    client: Any = None,
) -> Vended:
    """AssumeRole for this invocation (narrowed by its session policy), or with `invocation` None
    for the gateway, which decides every request itself. Raises BrokerError or Unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    name = sts_name(session_id, prefix="hoop-")
    source_identity = sts_name(user)
    client = client or sts_client(connection, aws_session)
    try:
        narrowing = {"Policy": _compact(session_policy(invocation))} if invocation is not None else {}
        answer = client.assume_role(
            RoleArn=connection.role_arn,
            RoleSessionName=name,
            SourceIdentity=source_identity,
            DurationSeconds=connection.duration_seconds,
            **narrowing,
        )
    except NoCredentialsError:
        raise BrokerError(
            "the hoop server has no AWS credentials of its own to call STS with",
            hint="give the server process AWS credentials (instance role, environment or profile)",
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise BrokerError(
            f"STS AssumeRole for connection {connection.name!r} failed: "
            f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise Unavailable(f"STS is unreachable for connection {connection.name!r}: {exc}") from None
    creds = answer["Credentials"]
    expiration = creds["Expiration"]
    if isinstance(expiration, str):
        expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=timezone.utc)
    return Vended(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        expiration=expiration,
        assumed_role_arn=answer.get("AssumedRoleUser", {}).get("Arn", ""),
        sts_session_name=name,
        region=connection.region,
        endpoint_url=connection.endpoint_url,
    )
