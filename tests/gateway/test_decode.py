"""Decoding real requests and hostile ones: each hostile body is a clear 4xx GatewayError."""

from __future__ import annotations

import json

import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.serialize import create_serializer
from gateway_roundtrip import DECODER, INDEX, request_for, with_host

from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest


def _code(request: GatewayRequest, signing: str) -> str:
    with pytest.raises(GatewayError) as caught:
        DECODER.decode(request, signing)
    assert 400 <= caught.value.status < 500
    return caught.value.code


def test_s3_virtual_host_and_path_style_read_the_same() -> None:
    model = INDEX.model("s3")
    op = model.operation_model("GetObject")
    path_style = request_for(model, op, {"Bucket": "my.bucket", "Key": "a/b c+d.txt", "Range": "bytes=0-9"})
    assert path_style.path == "/my.bucket/a/b%20c%2Bd.txt"
    vhost = GatewayRequest.build("GET", "/a/b%20c%2Bd.txt?x-id=GetObject",
                                 {"Host": "my.bucket.gw.test:8010", "Range": "bytes=0-9"})
    for request in (path_style, vhost):
        decoded = DECODER.decode(request, "s3")
        assert (decoded.service, decoded.operation) == ("s3", "GetObject")
        assert decoded.params == {"Bucket": "my.bucket", "Key": "a/b c+d.txt", "Range": "bytes=0-9"}
    listing = DECODER.decode(GatewayRequest.build("GET", "/?list-type=2&prefix=p", {"Host": "bkt.gw.test"}), "s3")
    assert (listing.operation, listing.params) == ("ListObjectsV2", {"Bucket": "bkt", "Prefix": "p"})


def test_a_streaming_s3_body_stays_in_the_body() -> None:
    request = GatewayRequest.build("PUT", "/b/k", {"Host": "gw.test", "Content-Length": "5"})
    decoded = DECODER.decode(request, "s3")
    assert (decoded.operation, decoded.streaming_member) == ("PutObject", "Body")
    assert decoded.params == {"Bucket": "b", "Key": "k", "ContentLength": 5}


def test_s3_copy_and_upload_part_copy_are_told_apart_by_their_required_members() -> None:
    base = {"Host": "gw.test", "x-amz-copy-source": "src/key"}
    assert DECODER.decode(GatewayRequest.build("PUT", "/b/k", base, b""), "s3").operation == "CopyObject"
    part = DECODER.decode(GatewayRequest.build("PUT", "/b/k?partNumber=1&uploadId=u", base, b""), "s3")
    assert part.operation == "UploadPartCopy" and part.params["PartNumber"] == 1


def test_sqs_send_message_in_json_and_in_query_form() -> None:
    model = INDEX.model("sqs")
    op = model.operation_model("SendMessage")
    params = {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "MessageBody": "hi & bye"}
    assert DECODER.decode(request_for(model, op, params), "sqs").params == params
    request_dict = create_serializer("query", include_validation=False).serialize_to_request(params, op)
    prepare_request_dict(request_dict, endpoint_url="http://gw.test")
    prepared = create_request_object(request_dict).prepare()
    query_form = GatewayRequest.build("POST", "/", {**dict(prepared.headers), "Host": "gw.test"}, prepared.body.encode())
    decoded = DECODER.decode(query_form, "sqs")
    assert (decoded.operation, decoded.protocol, decoded.params) == ("SendMessage", "query", params)


def test_an_ambiguous_path_needs_the_endpoint_prefix() -> None:
    model = INDEX.model("bedrock-agent")
    op = model.operation_model("TagResource")
    request = request_for(model, op, {"resourceArn": "arn", "tags": {"k": "v"}})
    assert _code(request, "bedrock") == "AmbiguousRequest"
    assert DECODER.decode(with_host(request, "bedrock-agent.gw.test"), "bedrock").service == "bedrock-agent"


def _json(target: str, body: bytes) -> GatewayRequest:
    return GatewayRequest.build("POST", "/", {"Host": "gw.test", "X-Amz-Target": target,
                                               "Content-Type": "application/x-amz-json-1.0"}, body)


def test_hostile_json() -> None:
    target = "DynamoDB_20120810.GetItem"
    assert _code(_json(target, b"{" * 100_000), "dynamodb") == "SerializationException"
    assert _code(_json(target, b"[" * 50 + b"]" * 50), "dynamodb") == "SerializationException"
    assert _code(_json(target, b'{"TableName": "a", "TableName": "b", "Key": {}}'), "dynamodb") == \
        "SerializationException"
    assert _code(_json(target, b'{"TableName": 5, "Key": {}}'), "dynamodb") == "SerializationException"
    assert _code(_json(target, b'{"TableName": NaN}'), "dynamodb") == "SerializationException"
    assert _code(_json(target, b"\xff\xfe"), "dynamodb") == "SerializationException"
    assert _code(_json("DynamoDB_20120810.Nope", b"{}"), "dynamodb") == "UnknownOperationException"
    ok = DECODER.decode(_json(target, json.dumps({"TableName": "t", "Key": {"id": {"S": "1"}}}).encode()), "dynamodb")
    assert ok.params == {"TableName": "t", "Key": {"id": {"S": "1"}}}


BOMB = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>
<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>&b;</Key><Value>v</Value></Tag></TagSet></Tagging>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><Tagging><TagSet><Tag><Key>&x;</Key>
<Value>v</Value></Tag></TagSet></Tagging>"""


def test_hostile_xml() -> None:
    def put_tagging(body: bytes) -> GatewayRequest:
        return GatewayRequest.build("PUT", "/b?tagging", {"Host": "gw.test"}, body)

    for body in (BOMB, XXE, b"<Tagging><TagSet>", b"<a>" * 100 + b"</a>" * 100, b"not xml"):
        assert _code(put_tagging(body), "s3") == "MalformedXML"
    twice = b"<Tagging><TagSet><Tag><Key>a</Key><Key>b</Key><Value>v</Value></Tag></TagSet></Tagging>"
    assert _code(put_tagging(twice), "s3") == "SerializationException"
    ok = b"<Tagging><TagSet><Tag><Key>a</Key><Value>v</Value></Tag></TagSet></Tagging>"
    assert DECODER.decode(put_tagging(ok), "s3").params == {"Bucket": "b", "Tagging": {"TagSet": [{"Key": "a",
                                                                                                 "Value": "v"}]}}


def test_hostile_cbor_and_query() -> None:
    def cbor(body: bytes) -> GatewayRequest:
        return GatewayRequest.build("POST", "/service/ACMPrivateCA/operation/ListCertificateAuthorities",
                                    {"Host": "gw.test", "smithy-protocol": "rpc-v2-cbor"}, body)

    for body in (b"\x81" * 10_000, b"\xbf" * 100, b"\xa1\x63abc", b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
                 b"\xa1\x63abc\x01\x00", b"\xc2\x41\x00"):
        assert _code(cbor(body), "acm-pca") == "SerializationException"
    assert DECODER.decode(cbor(b"\xa1\x6aMaxResults\x05"), "acm-pca").params == {"MaxResults": 5}

    def query(body: bytes) -> GatewayRequest:
        return GatewayRequest.build("POST", "/", {"Host": "gw.test",
                                                  "Content-Type": "application/x-www-form-urlencoded"}, body)

    ok = DECODER.decode(query(b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"), "ec2")
    assert ok.params == {"InstanceIds": ["i-1", "i-2"]}
    for body in (b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=a&InstanceId.3=b",
                 b"Action=DescribeInstances&Version=2016-11-15&Bogus=1",
                 b"Action=DescribeInstances&Version=2016-11-15&MaxResults=1&MaxResults=2",
                 b"Action=DescribeInstances&Version=2016-11-15&DryRun=yes"):
        assert _code(query(body), "ec2") in ("SerializationException", "InvalidRequest")
    assert _code(query(b"Action=Nope&Version=2016-11-15"), "ec2") == "InvalidAction"
