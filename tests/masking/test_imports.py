"""hoopcli.masking runs in the shim: stdlib-only at import, data loaded lazily per service."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_is_stdlib_only_and_lazy() -> None:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import hoopcli.masking, hoopcli.masking.hook\n"
        "from hoopcli.masking import Masker\n"
        "m = Masker(b'k' * 32)\n"
        "m.mask_parsed('sts', 'AssumeRole', {'Credentials': {'SessionToken': 'x' * 20}})\n"
        "m.mask_text('AKIAIOSFODNN7EXAMPLE password=hunter22')\n"
        "from hoopcli.masking import paths\n"
        "print(json.dumps({'new': sorted(set(sys.modules) - before),\n"
        "                  'services': paths._service_data.cache_info().currsize}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    third_party = [m for m in result["new"]
                   if m.split(".")[0] in {"botocore", "boto3", "awscli", "yaml", "click", "rich",
                                          "requests", "jwt", "keyring", "platformdirs"}]
    assert third_party == []
    assert result["services"] == 1  # only sts.json was read
