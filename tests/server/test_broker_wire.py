"""What the broker actually sends to STS, captured by a recording STS endpoint over real HTTP.

moto accepts but does not expose SourceIdentity and the session policy, so this endpoint records
the AssumeRole form and answers with a well-formed AssumeRoleResponse.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

RESPONSE = """<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
<SecretAccessKey>wire-secret</SecretAccessKey><SessionToken>wire-token</SessionToken>
<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROAX:{name}</AssumedRoleId>
<Arn>arn:aws:sts::123456789012:assumed-role/agent/{name}</Arn></AssumedRoleUser>
<SourceIdentity>{source}</SourceIdentity></AssumeRoleResult>
<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></AssumeRoleResponse>"""


class RecordingSTS:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                form["_authorization"] = self.headers.get("Authorization", "")
                owner.requests.append(form)
                body = RESPONSE.format(name=form.get("RoleSessionName", ""),
                                       source=form.get("SourceIdentity", "")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sts() -> Iterator[RecordingSTS]:
    recorder = RecordingSTS()
    yield recorder
    recorder.close()


def test_assume_role_parameters(make_server, sts: RecordingSTS) -> None:
    srv = make_server(connections={"default": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/agent",
                                               "region": "eu-west-1", "endpoint_url": sts.url,
                                               "duration_seconds": 1200}})
    r = httpx.post(srv.url + "/api/v1/credentials",
                   headers=srv.headers("u-123", email="Alice Smith <alice@example.com>"),
                   json={"connection": "default", "session_id": "0123abcd" * 8,
                         "argv": ["s3api", "get-object", "--bucket", "b1", "--key", "k/1.txt", "out.txt"]})
    assert r.status_code == 200, r.text
    [form] = sts.requests
    assert form["Action"] == "AssumeRole"
    assert form["RoleArn"] == "arn:aws:iam::123456789012:role/agent"
    assert form["DurationSeconds"] == "1200"
    # hoop session in the role session name, squeezed to STS's 64 characters
    assert form["RoleSessionName"] == ("hoop-" + "0123abcd" * 8)[:64]
    # the user as SourceIdentity, in STS's character set
    assert form["SourceIdentity"] == "Alice-Smith--alice@example.com-"
    assert json.loads(form["Policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b1/k/1.txt"]},
            # SSE-KMS objects: decrypt only through S3
            {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*",
             "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
        ],
    }
    # signed with the server's own credentials (the fixture's fake keys), for the connection's region
    assert "Credential=testing/" in form["_authorization"] and "/eu-west-1/sts/" in form["_authorization"]
    body = r.json()
    assert body["region"] == "eu-west-1"
    assert body["assumed_role_arn"] == f"arn:aws:sts::123456789012:assumed-role/agent/{form['RoleSessionName']}"
