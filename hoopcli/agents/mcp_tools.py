"""The MCP face of `hoop mcp` (hoopcli.agents.mcp): the tools, their schemas and the words a model
reads about them. Built on the official SDK's MCPServer; imported only by `hoop mcp`."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from hoopcli import __version__

INSTRUCTIONS = """\
hoop stands between you and AWS. Run AWS CLI commands with call_aws; check one first with
explain_aws. The organisation's policy decides every call: allowed calls run, reviewed calls
wait for a person's approval, denied calls never run. Secret values come back masked. Every call
is recorded in this hoop session. You never receive AWS credentials."""

CALL = """\
Run one AWS CLI command through hoop, for example `aws s3api list-buckets` (the leading `aws` is
optional; quote arguments as in a shell).

What hoop does:
- No shell runs: pipes, `;`, `&&`, redirections, VAR= prefixes, $VARIABLES and $(...) are refused.
  Local files inside hoop's own state or ~/.aws are refused too.
- The organisation's policy decides the call. decision "allow": it ran. decision "deny": it did
  not run and will not; do not retry or rephrase it to get around the rule, tell your user.
- decision "review": a person must approve it. The result has approval {id, status, url}; with
  status "pending", tell your user the url, or pass wait_seconds (up to 60) to wait. Once it is
  approved, call again with exactly the same command: it runs once.
- Secret values (secret strings, keys, passwords, tokens) in the output are replaced by
  [masked:KIND:FINGERPRINT]. hoop never reveals them; repeated attempts to read secrets are
  flagged to the security team.
- Every call, allowed or not, is recorded in this session for auditors.

Result: exit_code (0 ok; the AWS CLI's own codes; hoop's: 75 approval pending, 76 rejected by a
person, 77 denied by policy, 69 hoop server unreachable, 65 hoop login needed by your user),
stdout and stderr (at most 100 KB each; truncated says if cut), decision, rule, reason, approval."""

EXPLAIN = """\
Explain an AWS CLI command without running it: service, operation, the API calls it makes, the
IAM actions and resources, the access level (List, Read, Write, Permissions management,
Tagging), and hoop's policy decision (allow, review or deny) with the rule and its reason. Use it
to learn whether call_aws would need a person's approval or be denied. Nothing is sent to AWS."""

Command = Annotated[str, Field(description="One AWS CLI command line, e.g. `aws s3 ls s3://my-bucket/`.")]
Wait = Annotated[float, Field(ge=0, description="Seconds to wait for a person's approval of a reviewed "
                                                "call (0 to 60; default 0: answer at once).")]


class ApprovalInfo(BaseModel):
    id: str = Field(description="The approval request (apr_...).")
    status: str = Field(description="pending, approved, rejected or expired.")
    url: str = Field(description="Where a person can approve or reject it.")


class CallResult(BaseModel):
    exit_code: int = Field(description="The AWS CLI's exit code, or hoop's: 75 pending, 76 rejected, 77 denied.")
    stdout: str = Field(description="The command's output, secrets masked.")
    stderr: str = Field(description="Its error output; hoop's own lines start with `hoop: `.")
    truncated: bool = Field(description="True when stdout or stderr was cut at 100 KB.")
    decision: Literal["allow", "review", "deny"] | None = Field(description="hoop's policy decision.")
    rule: str | None = Field(description="The policy rule that decided.")
    reason: str | None = Field(description="The rule's reason.")
    approval: ApprovalInfo | None = Field(description="For a reviewed call: the approval request.")
    session_id: str = Field(description="The hoop session this call is recorded in.")


def build_server(session: Any, submit: Callable[[Callable[[], None]], None]) -> MCPServer[Any]:
    """The MCP server for `session`; `submit` hands a job to the thread that runs the shim."""
    server: MCPServer[Any] = MCPServer(name="hoop", instructions=INSTRUCTIONS, version=__version__,
                                       log_level="WARNING")

    async def on_main(fn: Callable[[], Any]) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def job() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:
                    future.set_exception(exc)

        submit(job)
        return await asyncio.wrap_future(future)

    @server.tool(name="call_aws", description=CALL, annotations=ToolAnnotations(
        title="Run an AWS CLI command through hoop", read_only_hint=False, destructive_hint=True,
        open_world_hint=True))
    async def call_aws(command: Command, wait_seconds: Wait = 0.0) -> CallResult:
        return CallResult.model_validate(await on_main(lambda: session.call(command, wait_seconds)))

    @server.tool(name="explain_aws", description=EXPLAIN, annotations=ToolAnnotations(
        title="Explain an AWS CLI command", read_only_hint=True, open_world_hint=False))
    async def explain_aws(command: Command) -> dict[str, Any]:
        import anyio

        result: dict[str, Any] = await anyio.to_thread.run_sync(session.explain, command)
        return result

    return server
