"""The SigV4 gateway's foundation: pure library code, no I/O.

    request.py   the incoming request as the listener hands it over (bounded, strict headers)
    errors.py    GatewayError: an AWS error code, an HTTP status and a message safe to show
    sigv4.py     verify Signature Version 4 (Authorization header and presigned query)
    chunked.py   incremental aws-chunked decoder (signed chunks, trailers, checksums)
    decode/      verified request -> (service, operation, parameters) from botocore's models

This package is a leaf: it imports botocore and hoopcli.errors, never other hoopcli.server
packages. The listener, forwarding, policy and recording build on it.
"""
