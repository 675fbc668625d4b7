"""Dependent actions: what an API call needs on real AWS besides its own action (issue 15, item 6).

    dependents(call, region) -> (ApiCall, ...)   iam:PassRole, ec2:CreateTags, KMS; each with the
                                                  exact resources, or a note and level Unknown

Sources: the Service Authorization Reference's dependent actions (``data/_dependent.<n>.json`` and
the actions listing iam:PassRole, ``data/_passrole.json``, both written by ``python -m
hoopcli.parse.generate``) and the kept list below of the parameters that pass a role. Stdlib
only; imported only for a call with a role-like parameter, tag specifications or a KMS key.

A dependent action whose resource hoop cannot name (a role given as an instance profile, a file://
value, a KMS alias) is kept with no resource, level Unknown and a note: the default policy reviews
it, and a vend-mode session policy refuses it instead of widening to Resource "*".
"""

from __future__ import annotations

import json
import os
from typing import Any

from hoopcli.parse.invocation import UNKNOWN, ApiCall, partition_of

PASS_ROLE = "iam:PassRole"
CREATE_TAGS = "ec2:CreateTags"
# Access levels of the dependent actions hoop derives (the SAR's; tests/parse checks them).
LEVELS = {PASS_ROLE: "Permissions management", CREATE_TAGS: "Tagging", "kms:GenerateDataKey": "Write",
          "kms:Decrypt": "Write"}

ARN, NAME, PROFILE = "arn", "name", "profile"
# The kept list: (botocore service, API operation) -> ((path of the member, what it holds), ...).
# A path is dotted, `[]` for each element of a list: "Targets[].RoleArn". ARN: a role ARN; NAME:
# a role ARN or a role name (the API takes either); PROFILE: an EC2 instance profile (the role it
# passes is not on the command line: not derivable). Operations the SAR lists with iam:PassRole
# and a top-level member named like a role are covered without an entry here (role ARNs only).
ROLE_PARAMS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("lambda", "CreateFunction"): (("Role", ARN),),
    ("lambda", "UpdateFunctionConfiguration"): (("Role", ARN),),
    ("cloudformation", "CreateStack"): (("RoleARN", ARN),),
    ("cloudformation", "UpdateStack"): (("RoleARN", ARN),),
    ("cloudformation", "DeleteStack"): (("RoleARN", ARN),),
    ("cloudformation", "CreateChangeSet"): (("RoleARN", ARN),),
    ("cloudformation", "ContinueUpdateRollback"): (("RoleARN", ARN),),
    ("cloudformation", "RollbackStack"): (("RoleARN", ARN),),
    ("cloudformation", "CreateStackSet"): (("AdministrationRoleARN", ARN),),
    ("cloudformation", "UpdateStackSet"): (("AdministrationRoleARN", ARN),),
    ("ecs", "RegisterTaskDefinition"): (("taskRoleArn", NAME), ("executionRoleArn", NAME)),
    ("ecs", "CreateService"): (("role", NAME),),
    ("stepfunctions", "CreateStateMachine"): (("roleArn", ARN),),
    ("stepfunctions", "UpdateStateMachine"): (("roleArn", ARN),),
    ("glue", "CreateJob"): (("Role", NAME),),
    ("glue", "UpdateJob"): (("JobUpdate.Role", NAME),),
    ("glue", "CreateCrawler"): (("Role", NAME),),
    ("glue", "UpdateCrawler"): (("Role", NAME),),
    ("glue", "CreateDevEndpoint"): (("RoleArn", ARN),),
    ("glue", "CreateSession"): (("Role", NAME),),
    ("glue", "CreateMLTransform"): (("Role", NAME),),
    ("glue", "UpdateMLTransform"): (("Role", NAME),),
    ("codebuild", "CreateProject"): (("serviceRole", NAME),),
    ("codebuild", "UpdateProject"): (("serviceRole", NAME),),
    ("codebuild", "StartBuild"): (("serviceRoleOverride", NAME),),
    ("codebuild", "CreateFleet"): (("fleetServiceRole", ARN),),
    ("ec2", "RunInstances"): (("IamInstanceProfile", PROFILE),),
    ("ec2", "AssociateIamInstanceProfile"): (("IamInstanceProfile", PROFILE),),
    ("ec2", "ReplaceIamInstanceProfileAssociation"): (("IamInstanceProfile", PROFILE),),
    ("ec2", "RequestSpotInstances"): (("LaunchSpecification.IamInstanceProfile", PROFILE),),
    ("events", "PutRule"): (("RoleArn", ARN),),
    ("events", "PutTargets"): (("Targets[].RoleArn", ARN),),
    ("scheduler", "CreateSchedule"): (("Target.RoleArn", ARN),),
    ("scheduler", "UpdateSchedule"): (("Target.RoleArn", ARN),),
    ("pipes", "CreatePipe"): (("RoleArn", ARN),),
    ("pipes", "UpdatePipe"): (("RoleArn", ARN),),
    ("batch", "CreateComputeEnvironment"): (("serviceRole", NAME),),
    ("batch", "UpdateComputeEnvironment"): (("serviceRole", NAME),),
    ("batch", "RegisterJobDefinition"): (("containerProperties.jobRoleArn", ARN),
                                         ("containerProperties.executionRoleArn", ARN)),
    ("sagemaker", "CreateTrainingJob"): (("RoleArn", ARN),),
    ("sagemaker", "CreateProcessingJob"): (("RoleArn", ARN),),
    ("sagemaker", "CreateModel"): (("ExecutionRoleArn", ARN),),
    ("sagemaker", "CreateNotebookInstance"): (("RoleArn", ARN),),
    ("logs", "PutSubscriptionFilter"): (("roleArn", ARN),),
    ("logs", "PutDestination"): (("roleArn", ARN),),
    ("eks", "CreateCluster"): (("roleArn", ARN),),
    ("eks", "CreateNodegroup"): (("nodeRole", ARN),),
    ("eks", "CreateFargateProfile"): (("podExecutionRoleArn", ARN),),
    ("codepipeline", "CreatePipeline"): (("pipeline.roleArn", ARN),),
    ("codepipeline", "UpdatePipeline"): (("pipeline.roleArn", ARN),),
    ("cloudtrail", "CreateTrail"): (("CloudWatchLogsRoleArn", ARN),),
    ("cloudtrail", "UpdateTrail"): (("CloudWatchLogsRoleArn", ARN),),
    ("iam", "AddRoleToInstanceProfile"): (("RoleName", NAME),),
    ("emr", "RunJobFlow"): (("ServiceRole", NAME), ("AutoScalingRole", NAME), ("StepExecutionRoleArn", ARN),
                            ("JobFlowRole", PROFILE)),
    ("emr", "AddJobFlowSteps"): (("ExecutionRoleArn", ARN),),
    ("emr", "CreateStudio"): (("ServiceRole", NAME), ("UserRole", NAME)),
    ("emr", "StartNotebookExecution"): (("ServiceRole", NAME),),
}
# awscli customizations whose options pass roles to the call they make: (cli, command) ->
# (API operation, {option: the operation's member}).
CUSTOM_ROLE_OPTIONS: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("cloudformation", "deploy"): ("CreateChangeSet", {"role-arn": "RoleARN"}),
    ("emr", "create-cluster"): ("RunJobFlow", {"service-role": "ServiceRole", "auto-scaling-role": "AutoScalingRole",
                                               "ec2-attributes": "JobFlowRole"}),
    ("emr", "add-steps"): ("AddJobFlowSteps", {"execution-role-arn": "ExecutionRoleArn"}),
}
# `aws emr create-cluster --use-default-roles` passes these by name (awscli's emr customization).
EMR_DEFAULT_ROLES = {"ServiceRole": "EMR_DefaultRole", "JobFlowRole": "EMR_EC2_DefaultRole"}
# S3 operations that encrypt with the caller's KMS key when SSEKMSKeyId is given.
S3_KMS = {"PutObject": ("kms:GenerateDataKey",),
          "CopyObject": ("kms:GenerateDataKey",),
          "CreateMultipartUpload": ("kms:GenerateDataKey", "kms:Decrypt")}
_ROLE_SUFFIXES = ("role", "rolearn", "rolename")


_shards: dict[int, dict[str, list[str]]] = {}
_shard_count: list[int] = []
_passes: frozenset[str] | None = None


def _data(name: str) -> Any:
    with open(os.path.join(os.path.dirname(__file__), "data", name), encoding="utf-8") as fh:
        return json.load(fh)


def sar_of(action: str) -> list[str]:
    """The SAR's dependent actions of one IAM action (data/_dependent.<n>.json, hashed by action
    into small files like the service files; `hoop explain` and the tests read them, not the shim)."""
    from hoopcli.parse.index import shard_of

    if not _shard_count:
        _shard_count.append(int(_data("_dependent.json")["shards"]))
    shard = shard_of(action, _shard_count[0])
    if shard not in _shards:
        _shards[shard] = _data(f"_dependent.{shard}.json")["actions"]
    return list(_shards[shard].get(action, ()))


def passes_role(actions: tuple[str, ...] | list[str]) -> bool:
    """Whether the SAR lists iam:PassRole among these actions' dependents (data/_passrole.json)."""
    global _passes
    if _passes is None:
        _passes = frozenset(_data("_passrole.json")["actions"])
    return any(a in _passes for a in actions)


def sar_dependents(actions: tuple[str, ...] | list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for action in actions:
        for dep in sar_of(action):
            seen.setdefault(dep, None)
    return list(seen)


def _decoded(value: Any) -> Any:
    """A structure given on the command line: JSON or awscli shorthand text, parsed; None when
    hoop cannot read it (a file:// value, malformed text)."""
    if isinstance(value, list):
        out = [_decoded(v) for v in value]
        return None if any(v is None for v in out) else out
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(("file://", "fileb://")):
        return None
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            return None
    try:
        from awscli.shorthand import ShorthandParser  # only for a structure given in shorthand

        return ShorthandParser().parse(text)
    except Exception:
        return None


_UNREADABLE = object()


def _values(params: dict[str, Any], path: str) -> list[Any]:
    """The values at `path` ("Targets[].RoleArn"); [_UNREADABLE] when a step cannot be read."""
    current: list[Any] = [params]
    steps = path.split(".")
    for i, step in enumerate(steps):
        many = step.endswith("[]")
        key = step.removesuffix("[]")
        nxt: list[Any] = []
        for item in current:
            if i:  # below the top level: a structure may still be JSON or shorthand text
                item = _decoded(item) if isinstance(item, (str, list)) else item
            for it in item if isinstance(item, list) and i else [item]:
                if it is None:
                    return [_UNREADABLE]
                if not isinstance(it, dict) or key not in it:
                    continue
                value = it[key]
                if many:
                    value = _decoded(value) if isinstance(value, (str, list)) else value
                    if value is None:
                        return [_UNREADABLE]
                    nxt.extend(value if isinstance(value, list) else [value])
                else:
                    nxt.append(value)
        current = nxt
    return current


def _role_arn(value: Any, kind: str, region: str | None) -> str | None:
    if not isinstance(value, str) or not value or value.startswith(("file://", "fileb://")):
        return None
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/") and len(parts[5]) > 5:
            return value
        return None
    if kind == NAME and all(c.isalnum() or c in "+=,.@_-/" for c in value) and "*" not in value:
        return f"arn:{partition_of(region)}:iam::*:role/{value.lstrip('/')}"
    return None


def _role_paths(call: ApiCall) -> tuple[tuple[str, str], ...]:
    kept = ROLE_PARAMS.get((call.service, call.operation))
    if kept is not None:
        return kept
    members = [m for m in call.params if m.lower().endswith(_ROLE_SUFFIXES)]
    if not members or not passes_role(call.actions):
        return ()
    return tuple((m, ARN) for m in members)


def _dependent(action: str, op: str, resources: list[str], note: str | None) -> ApiCall:
    service = action.split(":", 1)[0]
    if note or not resources:
        return ApiCall(service, action.split(":", 1)[1], (action,), UNKNOWN, (), {}, op,
                       note or f"hoop cannot name the resource {action} needs")
    return ApiCall(service, action.split(":", 1)[1], (action,), LEVELS.get(action, UNKNOWN),
                   tuple(dict.fromkeys(resources)), {}, op)


def pass_role(call: ApiCall, region: str | None) -> list[ApiCall]:
    out: list[ApiCall] = []
    arns: list[str] = []
    notes: list[str] = []
    for path, kind in _role_paths(call):
        for value in _values(call.params, path):
            if value is _UNREADABLE:
                notes.append(f"{path} is given in a form hoop cannot read (a file:// value or "
                             f"malformed text), so the role {call.operation} passes is unknown")
            elif kind == PROFILE:
                notes.append(f"{path} names an EC2 instance profile, not a role: the role it passes "
                             f"(iam:PassRole on it is needed) cannot be derived from the command line")
            else:
                arn = _role_arn(value, kind, region)
                if arn is None:
                    notes.append(f"{path} ({str(value)[:80]!r}) is not a role ARN"
                                 f"{' or name' if kind == NAME else ''}, so the role "
                                 f"{call.operation} passes is unknown")
                else:
                    arns.append(arn)
    if arns:
        out.append(_dependent(PASS_ROLE, call.operation, arns, None))
    for note in notes:
        out.append(_dependent(PASS_ROLE, call.operation, [], note))
    return out


def create_tags(call: ApiCall, region: str | None) -> list[ApiCall]:
    if call.service != "ec2" or not call.params.get("TagSpecifications"):
        return []
    types = _values(call.params, "TagSpecifications[].ResourceType")
    good = [t for t in types if isinstance(t, str) and t and all(c.isalnum() or c == "-" for c in t)]
    if not good or len(good) != len(types):
        return [_dependent(CREATE_TAGS, call.operation, [], "TagSpecifications without a readable "
                           "ResourceType: hoop cannot name what ec2:CreateTags would tag")]
    arns = [f"arn:{partition_of(region)}:ec2:{region or '*'}:*:{t}/*" for t in good]
    return [_dependent(CREATE_TAGS, call.operation, arns, None)]


def kms_key_arn(key: Any, region: str | None) -> tuple[str | None, str | None]:
    """(the key's ARN, None) or (None, why not): a key id or key ARN; never an alias."""
    if not isinstance(key, str) or not key or key.startswith(("file://", "fileb://")):
        return None, "the SSE-KMS key is given in a form hoop cannot read"
    if key.startswith("arn:"):
        parts = key.split(":", 5)
        if len(parts) == 6 and parts[2] == "kms" and parts[5].startswith("key/"):
            return key, None
        return None, f"{key[:80]!r} is not a KMS key ARN (an alias names no key hoop can scope to)"
    if key.startswith("alias/"):
        return None, f"{key[:80]!r} is a KMS alias: hoop cannot name the key it stands for"
    if all(c.isalnum() or c == "-" for c in key):
        return f"arn:{partition_of(region)}:kms:{region or '*'}:*:key/{key}", None
    return None, f"{key[:80]!r} is not a KMS key id"


def kms_for_s3(op: str, key: Any, actions: tuple[str, ...], region: str | None) -> list[ApiCall]:
    arn, why = kms_key_arn(key, region)
    return [_dependent(a, op, [arn] if arn else [], why) for a in actions]


def dependents(call: ApiCall, region: str | None) -> tuple[ApiCall, ...]:
    """The dependent actions of one API call (botocore names, API parameters)."""
    out = pass_role(call, region) if call.params else []
    if call.service == "ec2" and "TagSpecifications" in call.params:
        out.extend(create_tags(call, region))
    if call.service == "s3" and call.operation in S3_KMS and call.params.get("SSEKMSKeyId"):
        out.extend(kms_for_s3(call.operation, call.params["SSEKMSKeyId"], S3_KMS[call.operation], region))
    return tuple(out)


def custom_dependents(cli: str, op: str, params: dict[str, Any], calls: tuple[ApiCall, ...],
                      region: str | None) -> tuple[ApiCall, ...]:
    """An awscli customization's calls with the dependent actions its options add
    (`cloudformation deploy --role-arn`, `emr create-cluster --service-role`)."""
    found = CUSTOM_ROLE_OPTIONS.get((cli, op))
    if found is None:
        return calls
    api_op, options = found
    passed = {member: params[option] for option, member in options.items() if option in params}
    if (cli, op) == ("emr", "create-cluster"):
        if "InstanceProfile" not in str(passed.get("JobFlowRole", "InstanceProfile")):
            del passed["JobFlowRole"]          # --ec2-attributes without an instance profile
        if params.get("use-default-roles") is True:
            passed = EMR_DEFAULT_ROLES | passed
    if not passed:
        return calls
    out: list[ApiCall] = []
    for call in calls:
        out.append(call)
        if call.operation == api_op:
            out.extend(pass_role(call.replace(params=passed), region))
    return tuple(out)


def s3_dependents(calls: tuple[ApiCall, ...], params: dict[str, Any], region: str | None
                  ) -> tuple[ApiCall, ...]:
    """`aws s3 cp/mv/sync --sse-kms-key-id K`: the KMS actions the uploads and copies need."""
    key = params.get("sse-kms-key-id")
    ops = [c.operation for c in calls if c.operation in S3_KMS]
    if key is None or not ops:
        return calls
    actions = tuple(dict.fromkeys(a for o in ops for a in S3_KMS[o]))
    return calls + tuple(kms_for_s3(ops[0], key, actions, region))


def with_dependents(calls: tuple[ApiCall, ...], region: str | None) -> tuple[ApiCall, ...]:
    """`calls`, each followed by its dependent actions."""
    out: list[ApiCall] = []
    for call in calls:
        out.append(call)
        if call.dependent_of is None and call.params:
            out.extend(dependents(call, region))
    return tuple(out)
