"""Masking cost per MiB of typical AWS CLI output, and false positives on awscli's examples.

    .venv/bin/python benchmarks/masking_cost.py [--mib 4] [--repeat 5]

Prints milliseconds per MiB (median of --repeat runs) for:
  mask_text on JSON output (ListObjectsV2-like, DescribeInstances-like, with and without secrets),
  mask_parsed on the same data parsed (what the in-process runner does before formatting),
  StreamMasker over 64 KiB chunks, mask_debug on a --debug log,
and how many of the awscli documentation's example outputs the detectors change.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoopcli.masking import Masker, StreamMasker

RNG = random.Random(7)


def _rand(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def list_objects(mib: float) -> dict[str, Any]:
    contents = []
    size = 0
    while size < mib * 1024 * 1024:
        item = {"Key": f"logs/2024/{_rand(8)}/{_rand(12)}.json.gz", "LastModified": "2024-05-01T12:00:00+00:00",
                "ETag": f'"{_rand(32, "0123456789abcdef")}"', "Size": RNG.randrange(10**6),
                "StorageClass": "STANDARD"}
        contents.append(item)
        size += len(json.dumps(item)) + 10
    return {"Contents": contents, "Name": "bucket", "KeyCount": len(contents)}


def describe_instances(mib: float, secrets: bool = False) -> dict[str, Any]:
    reservations = []
    size = 0
    while size < mib * 1024 * 1024:
        iid = "i-" + _rand(17, "0123456789abcdef")
        inst = {
            "InstanceId": iid, "ImageId": "ami-" + _rand(17, "0123456789abcdef"),
            "InstanceType": "t3.micro", "PrivateIpAddress": "10.0.1.23",
            "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/web",
                                   "Id": "AIPA" + _rand(17, string.ascii_uppercase + "234567")},
            "SecurityGroups": [{"GroupId": "sg-" + _rand(17, "0123456789abcdef"), "GroupName": "web"}],
            "Tags": [{"Key": "Name", "Value": "web-" + _rand(4)}, {"Key": "team", "Value": "payments"}],
            "State": {"Code": 16, "Name": "running"}, "LaunchTime": "2024-05-01T12:00:00+00:00",
        }
        if secrets:
            inst["Tags"].append({"Key": "note", "Value": "AKIA" + _rand(16, string.ascii_uppercase)})
        reservations.append({"ReservationId": "r-" + _rand(17, "0123456789abcdef"), "Instances": [inst]})
        size += len(json.dumps(inst)) + 60
    return {"Reservations": reservations}


def debug_log(mib: float) -> str:
    lines = []
    size = 0
    while size < mib * 1024 * 1024:
        line = (
            "2024-05-01 12:00:00,000 - MainThread - botocore.endpoint - DEBUG - Sending http request: "
            "<AWSPreparedRequest method=POST, url=https://sts.amazonaws.com/, headers={'X-Amz-Date': "
            "b'20240501T120000Z', 'X-Amz-Security-Token': b'IQoJb3JpZ2luX2Vj" + _rand(200, string.ascii_letters)
            + "', 'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIA" + _rand(16, string.ascii_uppercase)
            + "/20240501/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=" + _rand(64, "0123456789abcdef")
            + "'}>\n2024-05-01 12:00:00,000 - MainThread - botocore.parsers - DEBUG - Response body:\nb'{\"Items\": ["
            + ", ".join(f'{{"id": "{_rand(8)}", "n": {i}}}' for i in range(20)) + "]}'\n"
        )
        lines.append(line)
        size += len(line)
    return "".join(lines)


def timed(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def example_false_positives(masker: Masker) -> tuple[int, int, int]:
    import awscli

    root = Path(awscli.__file__).parent / "examples"
    outputs = []
    for path in sorted(root.rglob("*.rst")):
        for block in path.read_text(errors="replace").split("Output::")[1:]:
            lines = []
            for line in block.splitlines()[1:]:
                if line and not line.startswith((" ", "\t")):
                    break
                lines.append(line)
            outputs.append("\n".join(lines))
    changed = [o for o in outputs if masker.mask_text(o) != o]
    markers = sum(masker.mask_text(o).count("[masked:") for o in changed)
    return len(outputs), len(changed), markers


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    masker = Masker(b"\x07" * 32)
    rows = []
    for name, data in (
        ("s3api list-objects-v2", ("s3", "ListObjectsV2", list_objects(args.mib))),
        ("ec2 describe-instances", ("ec2", "DescribeInstances", describe_instances(args.mib))),
        ("ec2 describe-instances, key ids in tags", ("ec2", "DescribeInstances", describe_instances(args.mib, True))),
    ):
        service, op, parsed = data
        text = json.dumps(parsed, indent=4)
        mib = len(text.encode()) / 2**20
        t_text = timed(lambda text=text: masker.mask_text(text), args.repeat)
        t_parsed = timed(lambda s=service, o=op, text=text: masker.mask_parsed(s, o, json.loads(text)),
                         args.repeat)
        t_load = timed(lambda text=text: json.loads(text), args.repeat)

        def stream(text: str = text) -> None:
            sm = StreamMasker(masker)
            raw = text.encode()
            for i in range(0, len(raw), 65536):
                sm.feed(raw[i:i + 65536])
            sm.close()

        t_stream = timed(stream, args.repeat)
        rows.append((name, mib, t_text / mib * 1000, (t_parsed - t_load) / mib * 1000, t_stream / mib * 1000))
    log = debug_log(args.mib)
    log_mib = len(log.encode()) / 2**20
    t_debug = timed(lambda: masker.mask_debug(log), args.repeat) / log_mib * 1000

    print(f"masking cost, median of {args.repeat} runs, Python {sys.version.split()[0]}")
    print(f"{'output':42} {'MiB':>5} {'mask_text':>10} {'mask_parsed':>12} {'stream':>8}  (ms per MiB)")
    for name, mib, a, b, c in rows:
        print(f"{name:42} {mib:5.2f} {a:10.1f} {b:12.1f} {c:8.1f}")
    print(f"{'--debug log (mask_debug)':42} {log_mib:5.2f} {t_debug:10.1f}")
    total, changed, markers = example_false_positives(masker)
    print(f"awscli example outputs: {total}; changed by mask_text: {changed} "
          f"({100 * changed / total:.1f}%), {markers} markers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
