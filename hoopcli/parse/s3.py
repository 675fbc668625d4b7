"""`aws s3 cp|mv|rm|sync|mb|rb|ls|presign|website` -> the S3 API operations they can make.

The high-level commands have no API model: what they call depends on their paths and flags.
This module says which operations a command *can* make (the most it may do), with the
resources (bucket and object ARNs) each one touches. Stdlib only.
"""

from __future__ import annotations

from typing import Any

from hoopcli.errors import InvocationError

COMMANDS = ("cp", "mv", "rm", "sync", "mb", "rb", "ls", "presign", "website")
_UPLOAD = ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
           "AbortMultipartUpload")
_COPY = ("HeadObject", "CopyObject", "CreateMultipartUpload", "UploadPartCopy",
         "CompleteMultipartUpload", "AbortMultipartUpload")
_DOWNLOAD = ("HeadObject", "GetObject")


def _split(path: str) -> tuple[str, str] | None:
    """('bucket', 'key') for an s3:// path, None for a local path or `-`."""
    if not path.startswith("s3://"):
        return None
    rest = path[5:]
    if rest.startswith("arn:"):  # access point ARN: arn:...:accesspoint/NAME[/key]
        head, sep, key = rest.partition(":accesspoint/")
        name, _, obj = key.partition("/")
        return (f"{head}{sep}{name}" if sep else rest), obj
    bucket, _, key = rest.partition("/")
    return bucket, key


def _bucket_arn(bucket: str, partition: str) -> str:
    return bucket if bucket.startswith("arn:") else f"arn:{partition}:s3:::{bucket}"


def _object_arn(bucket: str, key: str, partition: str, many: bool) -> str:
    base = _bucket_arn(bucket, partition)
    if bucket.startswith("arn:"):
        base += "/object"
    if many or not key or key.endswith("/"):
        return f"{base}/{key}*"
    return f"{base}/{key}"


def calls(op: str, paths: list[str], params: dict[str, Any], partition: str = "aws"
          ) -> list[tuple[str, tuple[str, ...]]]:
    """[(API operation, resources)] in the order the command would make them."""
    recursive = bool(params.get("recursive"))
    out: list[tuple[str, tuple[str, ...]]] = []

    def need(n: int) -> list[tuple[str, str] | None]:
        if len(paths) < n:
            raise InvocationError(f"`aws s3 {op}` needs {n} path argument{'s' if n > 1 else ''}")
        return [_split(p) for p in paths[:n]]

    def s3_only(where: tuple[str, str] | None) -> tuple[str, str]:
        if where is None or not where[0]:
            raise InvocationError(f"`aws s3 {op}` needs an s3://bucket path, got {paths[0]!r}")
        return where

    def add(ops: tuple[str, ...] | list[str], *res: str) -> None:
        for name in ops:
            out.append((name, tuple(res)))

    if op == "ls":
        where = _split(paths[0]) if paths else None
        if where is None or not where[0]:
            add(["ListBuckets"])
        else:
            add(["ListObjectsV2"], _bucket_arn(where[0], partition))
    elif op in ("mb", "rb", "website"):
        bucket, _ = s3_only(need(1)[0])
        arn = _bucket_arn(bucket, partition)
        if op == "mb":
            add(["CreateBucket"], arn)
        elif op == "website":
            add(["PutBucketWebsite"], arn)
        else:
            if params.get("force"):
                add(["ListObjectsV2"], arn)
                add(["DeleteObject"], _object_arn(bucket, "", partition, True))
            add(["DeleteBucket"], arn)
    elif op == "presign":
        bucket, key = s3_only(need(1)[0])
        add(["GetObject"], _object_arn(bucket, key, partition, False))
    elif op == "rm":
        bucket, key = s3_only(need(1)[0])
        if recursive:
            add(["ListObjectsV2"], _bucket_arn(bucket, partition))
        add(["DeleteObject"], _object_arn(bucket, key, partition, recursive))
    elif op in ("cp", "mv", "sync"):
        src, dst = need(2)
        many = recursive or op == "sync"
        if src is None and dst is None:
            raise InvocationError(f"`aws s3 {op}` needs at least one s3:// path")
        if src is not None:
            src_arn = _object_arn(src[0], src[1], partition, many)
            if many:
                add(["ListObjectsV2"], _bucket_arn(src[0], partition))
        if dst is not None:
            dst_arn = _object_arn(dst[0], dst[1], partition, many)
            if op == "sync":
                add(["ListObjectsV2"], _bucket_arn(dst[0], partition))
        if src is None and dst is not None:
            add(_UPLOAD, dst_arn)
        elif src is not None and dst is None:
            add(_DOWNLOAD, src_arn)
        elif src is not None and dst is not None:
            for name in _COPY:
                add([name], *((src_arn, dst_arn) if name == "CopyObject" or name == "UploadPartCopy"
                              else (src_arn,) if name == "HeadObject" else (dst_arn,)))
        if dst is not None and (params.get("acl") or params.get("grants")):
            add(["PutObjectAcl"], dst_arn)
        if op == "mv" and src is not None:
            add(["DeleteObject"], src_arn)
        if op == "sync" and params.get("delete") and dst is not None:
            add(["DeleteObject"], dst_arn)
    else:  # pragma: no cover - callers check COMMANDS
        raise InvocationError(f"unknown s3 command {op!r}")
    return out
