"""Exit codes of the shim and of `hoop`.

The real CLI's exit code passes through unchanged when the command ran. hoop's own outcomes use
codes the AWS CLI never uses (it uses 0, 1, 2, 130, 252-255).
"""

from __future__ import annotations


class ExitStatus:
    """Plain int constants rather than an IntEnum: this module is imported on every `aws` call,
    and creating an IntEnum costs about as much as the rest of the module tree's error classes."""

    OK = 0
    ERROR = 1                 # a `hoop` subcommand failed (bad input, a check did not pass)
    USAGE = 2                 # click usage errors
    NOT_LOGGED_IN = 65        # EX_DATAERR slot: not logged in, or login expired and refresh failed
    UNAVAILABLE = 69          # EX_UNAVAILABLE: server unreachable and the policy fails closed
    INTERNAL = 70             # EX_SOFTWARE: hoop internal error
    PENDING = 75              # EX_TEMPFAIL: approval still pending when the wait ended
    REJECTED = 76             # approval rejected by an approver
    DENIED = 77               # EX_NOPERM: denied by policy
