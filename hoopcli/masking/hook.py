"""botocore hooks: mask parsed responses in place before awscli formats them.

    from hoopcli.masking.hook import install
    install(masker, driver.session)      # awscli: create_clidriver().session (a botocore Session)
    install(masker, client.meta.events)  # or one boto3/botocore client

No botocore import here: the caller passes an object with `register(event, handler)`.

Install it for invocations whose response awscli formats directly (generated API operations,
waiters, paginated lists). Do NOT install it for custom commands that consume a response in code:
`ecr get-login-password` decodes the (masked) token and fails with "Incorrect padding"; their
stdout is masked as text instead (and whole_output_secret() commands as one marker). Handlers on
a more specific event (awscli's `after-call.ec2.GetPasswordData` decryption) run before this one.
"""

from __future__ import annotations

from typing import Any

from hoopcli.masking import Masker


def install(masker: Masker, events: Any) -> Any:
    """Register the masking handler on `after-call` (every service and operation; error
    responses pass through it too, before botocore raises); returns the handler."""

    def mask_after_call(http_response: Any = None, parsed: Any = None, model: Any = None,
                        **_: Any) -> None:
        if parsed is None or model is None:
            return
        masker.mask_parsed(model.service_model.service_name, model.name, parsed)

    events.register("after-call", mask_after_call, unique_id="hoopcli-masking-after-call")
    return mask_after_call

