#!/usr/bin/env python3
"""Checks every patch of intake_moto.py against a running launcher.

Run: .venv/bin/python scripts/lib/test_intake_moto.py
It starts the launcher on a free loopback port (TTL sweeps every 0.3 s), talks to it with
boto3, requests and raw HTTP, prints one line per check, stops the launcher and exits 1 if
any check failed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "intake_moto.py")
REGION = "us-east-1"

RESULTS: list[tuple[str, bool]] = []
LAUNCHER_PID = 0
# Copies into the test's bucket of more than 6 MiB take the multipart path (AWS: 5 GiB).
COPY_LIMIT = 6 << 20


def check(name: str, ok: bool, detail: Any = "") -> bool:
    RESULTS.append((name, bool(ok)))
    line = f"{'PASS' if ok else 'FAIL'}  {name}"
    if not ok and detail != "":
        line += f"  -- {detail}"
    print(line, flush=True)
    return bool(ok)


def run_section(name: str, fn: Callable[[str], None], url: str) -> None:
    try:
        fn(url)
    except Exception as e:  # a crash in a section is one failed check, not the end
        check(f"{name}: ran to the end", False, f"{type(e).__name__}: {e}")


# --------------------------------------------------------------------------------------
# Server and clients
# --------------------------------------------------------------------------------------


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_launcher() -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    log = f"/tmp/intake-moto-test-{port}.log"
    env = dict(os.environ, INTAKE_MOTO_TTL_INTERVAL="0.3")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, LAUNCHER, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return proc, url, log
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(f"the launcher exited, see {log}")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the launcher did not answer, see {log}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def client(url: str, service: str, key: str = "testing", secret: str = "testing", **config: Any):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=64, **config
        ),
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{random.randrange(1 << 30)}"


def error_of(call: Callable[[], Any]) -> tuple[str | None, int | None, str]:
    """(error code, HTTP status, message) of a boto3 call; (None, status, "") on success."""
    try:
        response = call()
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200) if isinstance(response, dict) else 200
        return None, status, ""
    except ClientError as e:
        return (
            e.response["Error"].get("Code"),
            e.response["ResponseMetadata"].get("HTTPStatusCode"),
            e.response["Error"].get("Message", ""),
        )


def xml_value(body: str | bytes, tag: str) -> str | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    m = re.search(rf"<{tag}>(.*?)</{tag}>", body, re.S)
    return m.group(1) if m else None


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --------------------------------------------------------------------------------------
# 1-2. The global lock and the transaction journal (the launcher's two original patches)
# --------------------------------------------------------------------------------------


def make_table(ddb, name: str, prefill: int = 0, range_key: bool = False) -> str:
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
    ddb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attrs,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in range(prefill):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"pre-{i}"}, "pad": {"S": "x" * 200}})
    return ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def shard_iterator(streams, arn: str, kind: str = "TRIM_HORIZON") -> str:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind)[
        "ShardIterator"
    ]


def drain_records(streams, iterator: str) -> tuple[list[dict], str]:
    out: list[dict] = []
    while True:
        r = streams.get_records(ShardIterator=iterator)
        iterator = r["NextShardIterator"]
        if not r["Records"]:
            return out, iterator
        out += r["Records"]


def names_keys(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]


def test_transaction_rollback(url: str) -> None:
    ddb, streams = client(url, "dynamodb"), client(url, "dynamodbstreams")
    table = unique("stream")
    arn = make_table(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "seed"}})
    _, it = drain_records(streams, shard_iterator(streams, arn))
    code, _, _ = error_of(
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "ghost"}}}},
                {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "seed"}},
                                    "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "after"}})
    after_old, _ = drain_records(streams, it)
    fresh, _ = drain_records(streams, shard_iterator(streams, arn))
    ghost = "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "ghost"}}, ConsistentRead=True)
    check("tx rollback: the transaction was cancelled", code == "TransactionCanceledException", code)
    check("tx rollback: an iterator from before the cancelled tx sees the later put",
          names_keys(after_old) == [("INSERT", "after")], names_keys(after_old))
    check("tx rollback: the stream holds seed + after only (no record of the cancelled put)",
          names_keys(fresh) == [("INSERT", "seed"), ("INSERT", "after")], names_keys(fresh))
    check("tx rollback: the cancelled item is absent", not ghost)

    # Hash+range table: a cancelled Update / Delete / Put leave the items as they were.
    table = unique("rb")
    arn = make_table(ddb, table, range_key=True)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}})
    it = shard_iterator(streams, arn, "LATEST")
    code, _, _ = error_of(
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
                {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "zzz"}, "sk": {"S": "1"}},
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )
    )
    items = {(x["pk"]["S"], x["sk"]["S"]): x.get("n", {}).get("N") for x in ddb.scan(TableName=table)["Items"]}
    records, _ = drain_records(streams, it)
    check("tx rollback: cancelled Update/Delete/Put on a hash+range table leave items and stream as they were",
          code == "TransactionCanceledException" and items == {("a", "1"): "1", ("b", "1"): None} and records == [],
          (code, items, names_keys(records)))


def test_concurrency(url: str, threads: int = 12, ops: int = 40) -> None:
    ddb = client(url, "dynamodb")
    table = unique("conc")
    make_table(ddb, table, prefill=300)
    ddb.put_item(TableName=table, Item={"pk": {"S": "seed"}})
    statuses: Counter = Counter()
    acked: set[str] = set()
    cancelled: set[str] = set()
    lock = threading.Lock()

    def worker(n: int) -> None:
        c = client(url, "dynamodb")
        rnd = random.Random(n)
        for i in range(ops):
            key = f"w{n}-{i}"
            kind = rnd.choice(["put", "tx-ok", "tx-cancel"])
            try:
                if kind == "put":
                    c.put_item(TableName=table, Item={"pk": {"S": key}})
                else:
                    c.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": table, "Item": {"pk": {"S": key}}}},
                            {"ConditionCheck": {
                                "TableName": table, "Key": {"pk": {"S": "seed"}},
                                "ConditionExpression": "attribute_exists(pk)" if kind == "tx-ok"
                                else "attribute_not_exists(pk)"}},
                        ]
                    )
                with lock:
                    statuses[200] += 1
                    acked.add(key)
            except ClientError as e:
                with lock:
                    statuses[e.response["ResponseMetadata"].get("HTTPStatusCode")] += 1
                    if e.response["Error"]["Code"] == "TransactionCanceledException":
                        cancelled.add(key)
            except Exception as e:  # connection errors
                with lock:
                    statuses[type(e).__name__] += 1

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    present: set[str] = set()
    kwargs: dict = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        present |= {x["pk"]["S"] for x in page["Items"]}
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    odd = {k: v for k, v in statuses.items() if k not in (200, 400)}
    check("global lock: 12 concurrent writers get no HTTP 500 or connection error", not odd, dict(statuses))
    check("global lock: no acknowledged write is lost", not (acked - present), len(acked - present))
    check("global lock: no cancelled write is kept", not (cancelled & present), len(cancelled & present))


def test_sqs_long_poll(url: str) -> None:
    sqs = client(url, "sqs")
    q = sqs.create_queue(QueueName=unique("lp"))["QueueUrl"]
    got: dict = {}

    def receive() -> None:
        t0 = time.time()
        r = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=10)
        got["n"], got["s"] = len(r.get("Messages", [])), time.time() - t0

    t = threading.Thread(target=receive)
    t.start()
    time.sleep(1)
    t0 = time.time()
    client(url, "sqs").send_message(QueueUrl=q, MessageBody="hi")
    send_s = time.time() - t0
    t.join()
    check("global lock: a SendMessage during a 10 s long poll returns at once and wakes the poll",
          got.get("n") == 1 and got["s"] < 3 and send_s < 1, (send_s, got))


def test_sqs_fair_queue(url: str) -> None:
    """A backlog of one group (a dead endpoint's retries) and one message of another: the
    other group's message is among the first received, not behind the backlog."""
    sqs = client(url, "sqs")
    q = sqs.create_queue(QueueName=unique("fair"))["QueueUrl"]
    for n in range(30):
        sqs.send_message(QueueUrl=q, MessageBody=f"noisy-{n}", MessageGroupId="noisy")
    sqs.send_message(QueueUrl=q, MessageBody="quiet-0", MessageGroupId="quiet")
    first = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=5, VisibilityTimeout=60)["Messages"]
    bodies = [m["Body"] for m in first]
    # The noisy group now has five in flight; a second quiet message comes before its backlog.
    sqs.send_message(QueueUrl=q, MessageBody="quiet-1", MessageGroupId="quiet")
    second = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    # Without groups a standard queue stays oldest first.
    plain = sqs.create_queue(QueueName=unique("plain"))["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=plain, MessageBody=f"m{n}")
    got = sqs.receive_message(QueueUrl=plain, MaxNumberOfMessages=3)["Messages"]
    check("fair queues: a quiet group is not held behind a noisy group's backlog",
          "quiet-0" in bodies and second[0]["Body"] == "quiet-1"
          and [m["Body"] for m in got] == ["m0", "m1", "m2"],
          (bodies, [m["Body"] for m in second], [m["Body"] for m in got]))


def test_sns_http_delivery(url: str) -> None:
    """An HTTP subscriber that calls back into moto before it answers (deadlock if the
    lock were held during the delivery)."""
    seen: list[tuple[str, bool]] = []

    class Subscriber(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                client(url, "sqs").list_queues()
                called_back = True
            except Exception:
                called_back = False
            seen.append((body.get("Type"), called_back))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Subscriber)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sns = client(url, "sns")
        topic = sns.create_topic(Name=unique("t"))["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http",
                      Endpoint=f"http://127.0.0.1:{server.server_address[1]}/")
        t0 = time.time()
        sns.publish(TopicArn=topic, Message="hello")
        took = time.time() - t0
    finally:
        server.shutdown()
    check("global lock: an SNS HTTP subscriber can call moto before it answers (publish took "
          f"{took:.2f} s)", took < 5 and ("Notification", True) in seen, seen)


# --------------------------------------------------------------------------------------
# 3. TransactWriteItems ClientRequestToken
# --------------------------------------------------------------------------------------


def test_client_request_token(url: str) -> None:
    ddb = client(url, "dynamodb")
    table = unique("tok")
    make_table(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "counter"}, "n": {"N": "0"}})

    def counter() -> int:
        return int(ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}},
                                ConsistentRead=True)["Item"]["n"]["N"])

    add_one = [{"Update": {"TableName": table, "Key": {"pk": {"S": "counter"}},
                           "UpdateExpression": "ADD n :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    token = unique("token-add")
    first = error_of(lambda: ddb.transact_write_items(TransactItems=add_one, ClientRequestToken=token))
    replay = error_of(lambda: ddb.transact_write_items(TransactItems=add_one, ClientRequestToken=token))
    check("token: a replay with the same token and request succeeds", first[0] is None and replay[0] is None,
          (first, replay))
    check("token: ... and is not applied again (ADD n :1 twice -> n = 1)", counter() == 1, counter())

    # The same request with its keys in another order is the same request.
    reordered = [{"Update": {"ExpressionAttributeValues": {":one": {"N": "1"}},
                             "UpdateExpression": "ADD n :one", "Key": {"pk": {"S": "counter"}},
                             "TableName": table}}]
    again = error_of(lambda: ddb.transact_write_items(TransactItems=reordered, ClientRequestToken=token))
    check("token: key order in the JSON does not make a different request", again[0] is None and counter() == 1,
          (again, counter()))

    # botocore fills in a fresh token on each call: those are new requests.
    ddb.transact_write_items(TransactItems=add_one)
    ddb.transact_write_items(TransactItems=add_one)
    check("token: calls with different (auto-filled) tokens are each applied", counter() == 3, counter())

    put_once = [{"Put": {"TableName": table, "Item": {"pk": {"S": "once"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}}]
    token2 = unique("token-put")
    first = error_of(lambda: ddb.transact_write_items(TransactItems=put_once, ClientRequestToken=token2))
    replay = error_of(lambda: ddb.transact_write_items(TransactItems=put_once, ClientRequestToken=token2))
    check("token: a replayed attribute_not_exists Put succeeds instead of being cancelled",
          first[0] is None and replay[0] is None, (first, replay))

    other = [{"Put": {"TableName": table, "Item": {"pk": {"S": "other"}}}}]
    code, status, message = error_of(
        lambda: ddb.transact_write_items(TransactItems=other, ClientRequestToken=token2)
    )
    absent = "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "other"}}, ConsistentRead=True)
    check("token: the same token with a different request -> IdempotentParameterMismatchException, HTTP 400",
          code == "IdempotentParameterMismatchException" and status == 400, (code, status, message))
    check("token: ... and that request is not applied", absent)

    # A cancelled call is not remembered: its retry (after fixing the condition) runs.
    token3 = unique("token-cancel")
    guarded = [{"Put": {"TableName": table, "Item": {"pk": {"S": "guarded"}},
                        "ConditionExpression": "attribute_exists(#g)",
                        "ExpressionAttributeNames": {"#g": "go"}}}]
    ddb.put_item(TableName=table, Item={"pk": {"S": "guarded"}})
    first = error_of(lambda: ddb.transact_write_items(TransactItems=guarded, ClientRequestToken=token3))
    ddb.put_item(TableName=table, Item={"pk": {"S": "guarded"}, "go": {"BOOL": True}})
    retry = error_of(lambda: ddb.transact_write_items(TransactItems=guarded, ClientRequestToken=token3))
    check("token: a cancelled call is not remembered; its retry runs",
          first[0] == "TransactionCanceledException" and retry[0] is None, (first, retry))


# --------------------------------------------------------------------------------------
# 4. TTL
# --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_ttl(url: str) -> None:
    ddb, streams = client(url, "dynamodb"), client(url, "dynamodbstreams")
    now = int(time.time())
    table = unique("ttl")
    arn = make_table(ddb, table, range_key=True)
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    it = shard_iterator(streams, arn, "LATEST")
    items = {
        "expired": {"exp": {"N": str(now - 60)}},
        "future": {"exp": {"N": str(now + 3600)}},
        "string-exp": {"exp": {"S": str(now - 60)}},
        "no-exp": {},
        "ancient": {"exp": {"N": str(now - 6 * 365 * 24 * 3600)}},
    }
    for pk, extra in items.items():
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "1"}, **extra})
    other = unique("nottl")
    make_table(ddb, other)
    ddb.put_item(TableName=other, Item={"pk": {"S": "expired"}, "exp": {"N": str(now - 60)}})

    def keys() -> set[str]:
        return {x["pk"]["S"] for x in ddb.scan(TableName=table, ConsistentRead=True)["Items"]}

    wait_until(lambda: "expired" not in keys())
    time.sleep(0.7)  # two more sweeps
    left = keys()
    check("ttl: items whose Number TTL is in the past are deleted", "expired" not in left, left)
    check("ttl: future, non-Number, missing and >5-years-old TTL values are kept",
          {"future", "string-exp", "no-exp", "ancient"} <= left, left)
    kept = "Item" in ddb.get_item(TableName=other, Key={"pk": {"S": "expired"}})
    check("ttl: a table without TTL enabled keeps its expired items", kept)

    records, _ = drain_records(streams, it)
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    check("ttl: the stream gets one REMOVE record per deleted item, with its OldImage",
          [r["dynamodb"]["Keys"]["pk"]["S"] for r in removes] == ["expired"]
          and all("OldImage" in r["dynamodb"] for r in removes), names_keys(records))
    check("ttl: the REMOVE records carry userIdentity Service / dynamodb.amazonaws.com",
          removes != [] and all(r.get("userIdentity") == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
                                for r in removes), [r.get("userIdentity") for r in removes])
    inserts = [r for r in records if r["eventName"] == "INSERT"]
    check("ttl: records of ordinary writes have no userIdentity", all("userIdentity" not in r for r in inserts))

    # The sweeper and requests share the global lock: writers racing it see no errors,
    # and every expired item is removed exactly once.
    table = unique("ttlrace")
    arn = make_table(ddb, table)
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    it = shard_iterator(streams, arn, "LATEST")
    errors: list[str] = []

    def writer(n: int) -> None:
        c = client(url, "dynamodb")
        for i in range(40):
            try:
                c.put_item(TableName=table, Item={"pk": {"S": f"{n}-{i}"}, "exp": {"N": str(now - 1)},
                                                  "pad": {"S": "x" * 100}})
            except Exception as e:
                errors.append(repr(e))

    ts = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    gone = wait_until(lambda: ddb.scan(TableName=table, ConsistentRead=True)["Count"] == 0)
    records, _ = drain_records(streams, it)
    counts = Counter(r["eventName"] for r in records)
    check("ttl: 240 puts racing the sweeper: no errors, all swept, one REMOVE each",
          not errors and gone and counts == Counter({"INSERT": 240, "REMOVE": 240}), (errors[:3], gone, counts))


# --------------------------------------------------------------------------------------
# 5-7. S3 conditional requests
# --------------------------------------------------------------------------------------


def test_s3_conditionals(url: str) -> None:
    s3 = client(url, "s3")
    bucket = unique("cond")
    s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"source")["ETag"]
    bare = etag.strip('"')

    def copy(**kw: Any):
        return lambda: s3.copy_object(Bucket=bucket, Key=kw.pop("dst", "dst"), CopySource=f"{bucket}/src", **kw)

    code, status, _ = error_of(copy(CopySourceIfMatch='"0123456789abcdef0123456789abcdef"', dst="wrong"))
    check("copy if-match: a different ETag -> 412 PreconditionFailed", (code, status) == ("PreconditionFailed", 412),
          (code, status))
    raw = requests.put(f"{url}/{bucket}/wrong2", headers={
        "x-amz-copy-source": f"/{bucket}/src", "x-amz-copy-source-if-match": "nope",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    check("copy if-match: the 412 body is S3's error XML with Condition x-amz-copy-source-If-Match",
          raw.status_code == 412 and xml_value(raw.content, "Code") == "PreconditionFailed"
          and xml_value(raw.content, "Condition") == "x-amz-copy-source-If-Match", raw.content[:300])
    missing = error_of(lambda: s3.head_object(Bucket=bucket, Key="wrong"))[1]
    check("copy if-match: nothing is copied when it fails", missing == 404, missing)
    check("copy if-match: the quoted ETag copies", error_of(copy(CopySourceIfMatch=etag, dst="q"))[0] is None)
    check("copy if-match: the unquoted ETag copies", error_of(copy(CopySourceIfMatch=bare, dst="u"))[0] is None)
    check("copy if-match: '*' copies", error_of(copy(CopySourceIfMatch="*", dst="star"))[0] is None)
    code, status, _ = error_of(copy(CopySourceIfNoneMatch=bare, dst="n1"))
    check("copy if-none-match: the source's ETag -> 412 (as before)", (code, status) == ("PreconditionFailed", 412),
          (code, status))
    check("copy if-none-match: another ETag copies (as before)",
          error_of(copy(CopySourceIfNoneMatch='"ffffffffffffffffffffffffffffffff"', dst="n2"))[0] is None)

    vb = unique("condv")
    s3.create_bucket(Bucket=vb)
    s3.put_bucket_versioning(Bucket=vb, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=vb, Key="k", Body=b"one")
    v2 = s3.put_object(Bucket=vb, Key="k", Body=b"two")
    src_v1 = {"Bucket": vb, "Key": "k", "VersionId": v1["VersionId"]}
    ok = error_of(lambda: s3.copy_object(Bucket=vb, Key="c1", CopySource=src_v1, CopySourceIfMatch=v1["ETag"]))
    bad = error_of(lambda: s3.copy_object(Bucket=vb, Key="c2", CopySource=src_v1, CopySourceIfMatch=v2["ETag"]))
    check("copy if-match: compared with the source version named by versionId",
          ok[0] is None and bad[0] == "PreconditionFailed", (ok, bad))

    # HeadObject / GetObject If-Match and If-None-Match, quoted or not.
    check("head If-Match: the unquoted ETag -> 200",
          error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfMatch=bare))[1] == 200)
    check("head If-Match: the quoted ETag -> 200",
          error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfMatch=etag))[1] == 200)
    check("head If-Match: '*' -> 200", error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfMatch="*"))[1] == 200)
    check("head If-Match: another ETag -> 412",
          error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfMatch="abc"))[1] == 412)
    check("head If-None-Match: the unquoted ETag -> 304",
          error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfNoneMatch=bare))[1] == 304)
    check("head If-None-Match: another ETag -> 200",
          error_of(lambda: s3.head_object(Bucket=bucket, Key="src", IfNoneMatch="abc"))[1] == 200)
    check("get If-Match: the unquoted ETag -> 200",
          error_of(lambda: s3.get_object(Bucket=bucket, Key="src", IfMatch=bare))[1] == 200)
    check("get If-Match: another ETag -> 412",
          error_of(lambda: s3.get_object(Bucket=bucket, Key="src", IfMatch="abc"))[1] == 412)

    # DeleteObject with VersionId and If-Match: AWS evaluates If-Match against the current
    # version only ("Conditional delete evaluations only apply to the current version").
    vb2 = unique("del")
    s3.create_bucket(Bucket=vb2)
    s3.put_bucket_versioning(Bucket=vb2, VersioningConfiguration={"Status": "Enabled"})
    d1 = s3.put_object(Bucket=vb2, Key="k", Body=b"one")
    d2 = s3.put_object(Bucket=vb2, Key="k", Body=b"two")
    code, status, _ = error_of(lambda: s3.delete_object(Bucket=vb2, Key="k", VersionId=d1["VersionId"], IfMatch=d1["ETag"]))
    check("delete VersionId+If-Match: the old version's own ETag -> 412 (the current version is compared)",
          (code, status) == ("PreconditionFailed", 412), (code, status))
    code, status, _ = error_of(lambda: s3.delete_object(Bucket=vb2, Key="k", VersionId=d1["VersionId"],
                                                          IfMatch=d2["ETag"].strip('"')))
    versions = [v["VersionId"] for v in s3.list_object_versions(Bucket=vb2, Prefix="k").get("Versions", [])]
    check("delete VersionId+If-Match: the current version's (unquoted) ETag -> 204, that old version is gone",
          status == 204 and d1["VersionId"] not in versions and d2["VersionId"] in versions, (status, versions))
    code, status, _ = error_of(lambda: s3.delete_object(Bucket=bucket, Key="q", IfMatch="*"))
    gone = error_of(lambda: s3.head_object(Bucket=bucket, Key="q"))[1]
    check("delete If-Match '*': an existing object is deleted (204)", status == 204 and gone == 404, (code, status, gone))
    code, status, _ = error_of(lambda: s3.delete_object(Bucket=bucket, Key="u", IfMatch="abc"))
    check("delete If-Match: another ETag -> 412", (code, status) == ("PreconditionFailed", 412), (code, status))
    code, status, _ = error_of(lambda: s3.delete_object(Bucket=bucket, Key="nothing-here", IfMatch="*"))
    check("delete If-Match: a missing key -> 404 NoSuchKey", (code, status) == ("NoSuchKey", 404), (code, status))


# --------------------------------------------------------------------------------------
# 8. PutObject checksums
# --------------------------------------------------------------------------------------


def stored_checksum(s3, bucket: str, key: str) -> tuple[str | None, str | None, bytes]:
    """(SHA256, type) as HeadObject and GetObject report them with ChecksumMode=ENABLED (None
    if they differ), and the body (botocore checks it against that checksum)."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    body = got["Body"].read()
    same = (head.get("ChecksumSHA256"), head.get("ChecksumType")) == (got.get("ChecksumSHA256"), got.get("ChecksumType"))
    return (head.get("ChecksumSHA256"), head.get("ChecksumType"), body) if same else (None, None, body)


def chunked_body(data: bytes, trailers: list[tuple[str, str]], signed: bool, chunk: int = 64 * 1024) -> bytes:
    """aws-chunked framing, as the Rust SDK writes it (signed: with chunk signatures)."""
    sig = ";chunk-signature=" + "0" * 64 if signed else ""
    out = bytearray()
    for i in range(0, len(data), chunk):
        piece = data[i : i + chunk]
        out += f"{len(piece):x}{sig}\r\n".encode() + piece + b"\r\n"
    out += f"0{sig}\r\n".encode()
    for name, value in trailers:
        out += f"{name}:{value}\r\n".encode()
    if signed:
        out += b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n"
    return bytes(out + b"\r\n")


def raw_put(url: str, bucket: str, key: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    now = datetime.datetime.now(datetime.timezone.utc)
    base = {
        "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
        "Authorization": f"AWS4-HMAC-SHA256 Credential=local/{now:%Y%m%d}/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "Content-Length": str(len(body)),
    }
    conn.request("PUT", f"/{bucket}/{key}", body=body, headers={**base, **headers})
    response = conn.getresponse()
    return response.status, response.read()


def test_put_checksums(url: str) -> None:
    s3 = client(url, "s3")
    bucket = unique("sum")
    s3.create_bucket(Bucket=bucket)
    data = b"hello checksums\n" * 100
    good = sha256_b64(data)

    status, text = raw_put(url, bucket, "raw-header", data, {"x-amz-checksum-sha256": good})
    value, kind, _ = stored_checksum(s3, bucket, "raw-header")
    check("put checksum: a raw PUT with x-amz-checksum-sha256 alone (no x-amz-sdk-checksum-algorithm) "
          "stores it; Head/GetObject return it with type FULL_OBJECT",
          status == 200 and (value, kind) == (good, "FULL_OBJECT"), (status, text[:200], value, kind))
    status, text = raw_put(url, bucket, "raw-bad", data, {"x-amz-checksum-sha256": sha256_b64(b"other")})
    check("put checksum: a raw PUT with a wrong x-amz-checksum-sha256 -> 400 BadDigest",
          status == 400 and xml_value(text, "Code") == "BadDigest", (status, text[:200]))

    s3.put_object(Bucket=bucket, Key="header", Body=data, ChecksumSHA256=good)
    value, kind, _ = stored_checksum(s3, bucket, "header")
    check("put checksum: boto3 ChecksumSHA256= is stored, type FULL_OBJECT", (value, kind) == (good, "FULL_OBJECT"),
          (value, kind))

    code, status, message = error_of(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=data,
                                                           ChecksumSHA256=sha256_b64(b"other")))
    check("put checksum: a wrong SHA256 -> 400 BadDigest with AWS's message",
          (code, status, message) == ("BadDigest", 400, "The SHA256 you specified did not match the calculated checksum."),
          (code, status, message))
    check("put checksum: ... and nothing is stored", error_of(lambda: s3.head_object(Bucket=bucket, Key="bad"))[1] == 404)

    code, status, message = error_of(lambda: s3.put_object(Bucket=bucket, Key="badcrc", Body=data, ChecksumCRC32="AAAAAA=="))
    check("put checksum: a wrong CRC32 -> 400 BadDigest", (code, status) == ("BadDigest", 400), (code, status, message))

    s3.put_object(Bucket=bucket, Key="algo", Body=data, ChecksumAlgorithm="SHA256")
    value, kind, _ = stored_checksum(s3, bucket, "algo")
    check("put checksum: botocore ChecksumAlgorithm=SHA256 (header) is stored", (value, kind) == (good, "FULL_OBJECT"),
          (value, kind))

    try:
        from awscrt import checksums  # botocore needs it for CRC32C, the launcher too
    except ImportError:
        print("SKIP  put checksum: CRC32C (awscrt is not installed)", flush=True)
    else:
        s3.put_object(Bucket=bucket, Key="crc32c", Body=data, ChecksumAlgorithm="CRC32C")
        head = s3.head_object(Bucket=bucket, Key="crc32c", ChecksumMode="ENABLED")
        crc32c = base64.b64encode(checksums.crc32c(data).to_bytes(4, "big")).decode()
        check("put checksum: CRC32C is verified and stored as the real CRC32C (moto alone would use CRC32)",
              head.get("ChecksumCRC32C") == crc32c, (head.get("ChecksumCRC32C"), crc32c))

    # botocore sends a trailer only over https; force it over http to get
    # Content-Encoding: aws-chunked, Transfer-Encoding: chunked, x-amz-trailer and
    # x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    trailer_s3 = client(url, "s3")
    sent: dict = {}

    def to_trailer(params: dict, **_: Any) -> None:
        algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    def capture(request: Any, **_: Any) -> None:
        sent.update({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    trailer_s3.meta.events.register("before-call.s3.PutObject", to_trailer)
    trailer_s3.meta.events.register("before-send.s3.PutObject", capture)
    trailer_s3.put_object(Bucket=bucket, Key="trailer", Body=data, ChecksumAlgorithm="SHA256")
    value, kind, body = stored_checksum(s3, bucket, "trailer")
    shaped = (sent.get("content-encoding") == "aws-chunked" and sent.get("x-amz-trailer") == "x-amz-checksum-sha256"
              and sent.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    check("put checksum: botocore aws-chunked + trailer (unsigned): decoded body stored, trailer checksum stored",
          shaped and body == data and (value, kind) == (good, "FULL_OBJECT"), (sent, value, kind, body[:40]))

    # As the Rust SDK sends a streaming body over plain http: signed aws-chunked with a
    # trailer.  The data contains text that looks like a trailer, to catch a parser that
    # searches the whole body.
    rust_data = (b"x-amz-checksum-sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n" + os.urandom(150_000))
    rust_headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(rust_data)),
        "x-amz-trailer": "x-amz-checksum-sha256",
        "x-amz-sdk-checksum-algorithm": "SHA256",
        "Content-Type": "application/octet-stream",
    }
    status, text = raw_put(url, bucket, "rust", chunked_body(rust_data, [("x-amz-checksum-sha256", sha256_b64(rust_data))], True),
                           rust_headers)
    value, kind, body = stored_checksum(s3, bucket, "rust")
    encoding = s3.head_object(Bucket=bucket, Key="rust").get("ContentEncoding")
    check("put checksum: Rust-SDK-style signed aws-chunked + trailer (3 chunks): 200, decoded body, checksum stored",
          status == 200 and body == rust_data and (value, kind) == (sha256_b64(rust_data), "FULL_OBJECT"),
          (status, text[:200], value, kind, len(body)))
    check("put checksum: ... and aws-chunked is not stored as the object's Content-Encoding", not encoding, encoding)

    status, text = raw_put(url, bucket, "rust-bad",
                           chunked_body(rust_data, [("x-amz-checksum-sha256", sha256_b64(b"x"))], True), rust_headers)
    check("put checksum: a wrong trailer checksum -> 400 BadDigest",
          status == 400 and xml_value(text, "Code") == "BadDigest", (status, text[:200]))

    unsigned = dict(rust_headers, **{"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                     "x-amz-decoded-content-length": str(len(data))})
    status, text = raw_put(url, bucket, "unsigned",
                           chunked_body(data, [("x-amz-checksum-sha256", good)], False), unsigned)
    value, kind, body = stored_checksum(s3, bucket, "unsigned")
    check("put checksum: unsigned aws-chunked + trailer by hand: decoded body and checksum stored",
          status == 200 and body == data and value == good, (status, text[:200], value))

    short = dict(rust_headers, **{"x-amz-decoded-content-length": str(len(rust_data) + 5)})
    status, text = raw_put(url, bucket, "short",
                           chunked_body(rust_data, [("x-amz-checksum-sha256", sha256_b64(rust_data))], True), short)
    check("put checksum: a body shorter than x-amz-decoded-content-length -> 400 IncompleteBody",
          status == 400 and xml_value(text, "Code") == "IncompleteBody", (status, text[:200]))


# --------------------------------------------------------------------------------------
# 9. POST object
# --------------------------------------------------------------------------------------


def sigv4_sign(secret: str, date: str, region: str, string_to_sign: str) -> str:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def hand_post(bucket: str, fields: dict[str, str], conditions: list | None = None, *, access_key: str = "testing",
              secret: str = "testing", expires_in: int = 300, extra: list | None = None,
              omit_bucket_condition: bool = False) -> dict[str, str]:
    """A SigV4 POST form, as the project's crates/aws/src/s3/post.rs builds it: every field
    an exact condition, unless `conditions` says otherwise; `extra` conditions appended."""
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%d")
    form = dict(fields)
    form["x-amz-algorithm"] = "AWS4-HMAC-SHA256"
    form["x-amz-credential"] = f"{access_key}/{date}/{REGION}/s3/aws4_request"
    form["x-amz-date"] = now.strftime("%Y%m%dT%H%M%SZ")
    if conditions is None:
        conditions = [{k: v} for k, v in form.items()]
    else:
        conditions = conditions + [{k: form[k]} for k in ("x-amz-algorithm", "x-amz-credential", "x-amz-date")]
    if not omit_bucket_condition:
        conditions = [{"bucket": bucket}] + conditions
    expiration = (now + datetime.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = base64.b64encode(json.dumps({"expiration": expiration,
                                          "conditions": conditions + (extra or [])}).encode()).decode()
    form["policy"] = policy
    form["x-amz-signature"] = sigv4_sign(secret, date, REGION, policy)
    return form


def post(url: str, bucket: str, form: dict[str, str], content: bytes, filename: str = "upload.bin") -> requests.Response:
    return requests.post(f"{url}/{bucket}", data=form, files={"file": (filename, content)}, timeout=30)


def outcome(r: requests.Response) -> tuple[int, str | None, str | None]:
    return r.status_code, xml_value(r.content, "Code"), xml_value(r.content, "Message")


def test_post_object(url: str) -> None:
    s3 = client(url, "s3", signature_version="s3v4")
    bucket = unique("post")
    s3.create_bucket(Bucket=bucket)
    content = b"%PDF-1.7 a small document\n" * 20
    md5 = '"' + hashlib.md5(content).hexdigest() + '"'

    # boto3's generate_presigned_post, fields pinned by conditions.
    p = s3.generate_presigned_post(
        bucket, "in/a.pdf",
        Fields={"Content-Type": "application/pdf", "x-amz-meta-owner": "acme"},
        Conditions=[{"Content-Type": "application/pdf"}, {"x-amz-meta-owner": "acme"},
                    ["content-length-range", 1, 10_000]],
        ExpiresIn=300,
    )
    r = post(url, bucket, p["fields"], content)
    head = s3.head_object(Bucket=bucket, Key="in/a.pdf")
    check("post: a good boto3 presigned POST -> 204 with the ETag header", r.status_code == 204
          and r.headers.get("ETag") == md5 and head["ETag"] == md5, (r.status_code, r.headers, r.content[:200]))
    check("post: ... Location header names the object", r.headers.get("Location", "").endswith(f"/{bucket}/in/a.pdf"),
          r.headers.get("Location"))
    check("post: ... Content-Type and x-amz-meta-* stored",
          head["ContentType"] == "application/pdf" and head["Metadata"] == {"owner": "acme"}, head)

    r = post(url, bucket, hand_post(bucket, {"key": "in/201.pdf", "success_action_status": "201"}), content)
    check("post: success_action_status 201 -> 201 PostResponse XML (Location, Bucket, Key, ETag)",
          r.status_code == 201 and xml_value(r.content, "Bucket") == bucket and xml_value(r.content, "Key") == "in/201.pdf"
          and xml_value(r.content, "ETag") in (md5, md5.replace('"', "&quot;"))
          and (xml_value(r.content, "Location") or "").endswith(f"/{bucket}/in/201.pdf"),
          (r.status_code, r.content[:300]))
    r = post(url, bucket, hand_post(bucket, {"key": "in/200.pdf", "success_action_status": "200"}), content)
    check("post: success_action_status 200 -> 200, empty body, ETag header",
          r.status_code == 200 and r.content == b"" and r.headers.get("ETag") == md5, (r.status_code, r.content[:200]))

    # The project's own policy shape (crates/aws/src/s3/post.rs), signed with local/local.
    r = post(url, bucket, hand_post(bucket, {"key": "in/project.pdf", "Content-Type": "application/pdf"},
                                    access_key="local", secret="local",
                                    extra=[["content-length-range", 0, 1000]]), content)
    check("post: the project's policy shape signed with local/local -> 204", r.status_code == 204, outcome(r))

    # Expiration.
    p = s3.generate_presigned_post(bucket, "in/late.pdf", ExpiresIn=-60)
    check("post: an expired policy -> 403 AccessDenied 'Policy expired.'",
          outcome(post(url, bucket, p["fields"], content)) ==
          (403, "AccessDenied", "Invalid according to Policy: Policy expired."))

    # Conditions.
    p = s3.generate_presigned_post(bucket, "in/signed.pdf")
    form = dict(p["fields"], key="in/other.pdf")
    status, code, message = outcome(post(url, bucket, form, content))
    check("post: a key other than the signed one -> 403 AccessDenied 'Policy Condition failed: {\"key\": ...}'",
          (status, code) == (403, "AccessDenied")
          and message == 'Invalid according to Policy: Policy Condition failed: {"key": "in/signed.pdf"}',
          (status, code, message))
    stored = error_of(lambda: s3.head_object(Bucket=bucket, Key="in/other.pdf"))[1]
    check("post: ... and nothing is stored", stored == 404, stored)

    starts = [["starts-with", "$key", "in/"], ["starts-with", "$Content-Type", "image/"]]
    ok = post(url, bucket, hand_post(bucket, {"key": "in/pic.png", "Content-Type": "image/png"}, starts), content)
    out = post(url, bucket, hand_post(bucket, {"key": "out/pic.png", "Content-Type": "image/png"}, starts), content)
    listed = post(url, bucket, hand_post(bucket, {"key": "in/l.png", "Content-Type": "image/png,text/plain"}, starts),
                  content)
    check("post: starts-with key/Content-Type: a matching form -> 204", ok.status_code == 204, outcome(ok))
    check("post: starts-with $key 'in/' with key out/... -> 403", outcome(out)[:2] == (403, "AccessDenied"), outcome(out))
    check("post: starts-with Content-Type: every member of a comma list must match -> 403",
          outcome(listed)[:2] == (403, "AccessDenied"), outcome(listed))
    bad_op = post(url, bucket, hand_post(bucket, {"key": "in/s.pdf", "success_action_status": "204"},
                                         [{"key": "in/s.pdf"}, ["starts-with", "$success_action_status", ""]]), content)
    check("post: starts-with on a field that allows only exact matches -> 403",
          outcome(bad_op)[:2] == (403, "AccessDenied"), outcome(bad_op))

    case = post(url, bucket, hand_post(bucket, {"Key": "in/case.pdf", "CONTENT-TYPE": "text/plain"},
                                       [{"key": "in/case.pdf"}, ["eq", "$Content-Type", "text/plain"]]), content)
    stored = s3.head_object(Bucket=bucket, Key="in/case.pdf")["ContentType"] if case.status_code == 204 else None
    check("post: field names are case-insensitive (Key, CONTENT-TYPE vs $Content-Type)",
          case.status_code == 204 and stored == "text/plain", (outcome(case), stored))

    absent = post(url, bucket, hand_post(bucket, {"key": "in/absent.pdf"},
                                         [{"key": "in/absent.pdf"}, {"x-amz-meta-owner": "acme"}]), content)
    check("post: a condition on a field the form lacks -> 403", outcome(absent)[:2] == (403, "AccessDenied"), outcome(absent))
    absent_sw = post(url, bucket, hand_post(bucket, {"key": "in/absent2.pdf"},
                                            [{"key": "in/absent2.pdf"}, ["starts-with", "$x-amz-meta-tag", ""]]), content)
    check("post: ... also starts-with '' on an absent field -> 403",
          outcome(absent_sw)[:2] == (403, "AccessDenied"), outcome(absent_sw))

    # Coverage: every field needs a condition.
    form = hand_post(bucket, {"key": "in/extra.pdf"}, [{"key": "in/extra.pdf"}])
    form["x-amz-meta-extra"] = "1"
    check("post: a field with no condition -> 403 'Extra input fields: x-amz-meta-extra'",
          outcome(post(url, bucket, form, content)) ==
          (403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra"))
    form = hand_post(bucket, {"key": "in/ignored.pdf"}, [{"key": "in/ignored.pdf"}])
    form["x-ignore-comment"] = "anything"
    check("post: x-ignore-* fields need no condition -> 204", post(url, bucket, form, content).status_code == 204)
    nob = post(url, bucket, hand_post(bucket, {"key": "in/nob.pdf"}, omit_bucket_condition=True), content)
    check("post: a policy with no bucket condition -> 403 'Extra input fields: bucket'",
          outcome(nob) == (403, "AccessDenied", "Invalid according to Policy: Extra input fields: bucket"), outcome(nob))
    other_bucket = post(url, bucket, hand_post("some-other-bucket", {"key": "in/ob.pdf"}), content)
    check("post: a policy for another bucket -> 403", outcome(other_bucket)[:2] == (403, "AccessDenied"),
          outcome(other_bucket))

    # Sizes.
    big = post(url, bucket, hand_post(bucket, {"key": "in/big.pdf"}, extra=[["content-length-range", 0, 10]]), content)
    small = post(url, bucket, hand_post(bucket, {"key": "in/small.pdf"},
                                        extra=[["content-length-range", 10_000, 20_000]]), content)
    check("post: larger than content-length-range -> 400 EntityTooLarge", outcome(big)[:2] == (400, "EntityTooLarge"),
          outcome(big))
    check("post: smaller than content-length-range -> 400 EntityTooSmall", outcome(small)[:2] == (400, "EntityTooSmall"),
          outcome(small))

    # Signatures.
    wrong = post(url, bucket, hand_post(bucket, {"key": "in/ws.pdf"}, secret="not-the-secret"), content)
    check("post: signed with the wrong secret -> 403 SignatureDoesNotMatch",
          outcome(wrong)[:2] == (403, "SignatureDoesNotMatch"), outcome(wrong))
    form = hand_post(bucket, {"key": "in/tamper.pdf"})
    doc = json.loads(base64.b64decode(form["policy"]))
    doc["conditions"].append(["content-length-range", 0, 10**9])
    form["policy"] = base64.b64encode(json.dumps(doc).encode()).decode()
    check("post: a policy changed after signing -> 403 SignatureDoesNotMatch",
          outcome(post(url, bucket, form, content))[:2] == (403, "SignatureDoesNotMatch"))
    unknown = post(url, bucket, hand_post(bucket, {"key": "in/ak.pdf"}, access_key="AKIDUNKNOWN", secret="x"), content)
    check("post: an unknown access key -> 403 InvalidAccessKeyId", outcome(unknown)[:2] == (403, "InvalidAccessKeyId"),
          outcome(unknown))
    anonymous = requests.post(f"{url}/{bucket}", data={"key": "in/anon.pdf"}, files={"file": ("a", content)})
    check("post: no policy and no signature -> 403 AccessDenied", outcome(anonymous)[:2] == (403, "AccessDenied"),
          outcome(anonymous))

    # Checksum field.
    good = sha256_b64(content)
    r = post(url, bucket, hand_post(bucket, {"key": "in/sum.pdf", "x-amz-checksum-sha256": good}), content)
    head = s3.head_object(Bucket=bucket, Key="in/sum.pdf", ChecksumMode="ENABLED") if r.status_code == 204 else {}
    check("post: an x-amz-checksum-sha256 field that matches -> stored; HeadObject returns it with FULL_OBJECT",
          r.status_code == 204 and head.get("ChecksumSHA256") == good and head.get("ChecksumType") == "FULL_OBJECT",
          (outcome(r), head.get("ChecksumSHA256"), head.get("ChecksumType")))
    r = post(url, bucket, hand_post(bucket, {"key": "in/badsum.pdf", "x-amz-checksum-sha256": sha256_b64(b"x")}), content)
    check("post: an x-amz-checksum-sha256 field that does not match -> 400 BadDigest",
          outcome(r)[:2] == (400, "BadDigest") and error_of(lambda: s3.head_object(Bucket=bucket, Key="in/badsum.pdf"))[1] == 404,
          outcome(r))


# --------------------------------------------------------------------------------------


def test_accounts(url: str) -> None:
    """Patch 9: a 12-digit access key is its account."""
    a, b = "111122223333", "444455556666"
    sqs_a, sqs_b = client(url, "sqs", key=a, secret="local"), client(url, "sqs", key=b, secret="local")
    name = unique("acct")
    dlq = sqs_a.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    arn = sqs_a.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    check("a queue's ARN names the caller's account", f":{a}:" in arn, arn)
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    created = sqs_a.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})
    check("a redrive policy finds its dead-letter queue in the same account", "QueueUrl" in created)
    b_names = [u.rsplit("/", 1)[-1] for u in sqs_b.list_queues(QueueNamePrefix=name).get("QueueUrls", [])]
    check("another account does not list them", b_names == [], b_names)
    ddb = client(url, "dynamodb", key=b, secret="local")
    stream = make_table(ddb, unique("acct"))
    check("a table's stream ARN names the caller's account", f":{b}:" in stream, stream)
    s3 = client(url, "s3", key=a, secret="local")
    bucket = unique("acct-bucket")
    s3.create_bucket(Bucket=bucket)
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    check("a presigned PUT of the account's bucket works", requests.put(put, data=b"x", timeout=10).status_code == 200)
    other = client(url, "s3", key="testing", secret="testing")
    check("the bucket is reachable by name from another account", other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x")


def test_legal_hold(url: str) -> None:
    s3 = client(url, "s3")
    bucket = unique("lock")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    check("Object Lock can be enabled on an existing versioned bucket", lock.get("ObjectLockEnabled") == "Enabled", lock)
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=version, LegalHold={"Status": "ON"})
    status = s3.get_object_legal_hold(Bucket=bucket, Key="k", VersionId=version)["LegalHold"]["Status"]
    check("a legal hold reads back ON", status == "ON", status)
    code, http, _ = error_of(lambda: s3.delete_object(Bucket=bucket, Key="k", VersionId=version))
    check("a held version refuses DeleteObject with its VersionId (403)", (code, http) == ("AccessDenied", 403), (code, http))
    errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": version}]}).get("Errors", [])
    check("a held version refuses DeleteObjects", [e["Code"] for e in errors] == ["AccessDenied"], errors)
    marker = s3.delete_object(Bucket=bucket, Key="k").get("DeleteMarker")
    check("a delete without a VersionId adds a delete marker", marker is True, marker)
    code, http, _ = error_of(
        lambda: s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId="missing", LegalHold={"Status": "OFF"})
    )
    check("a hold on a missing version is 404 NoSuchVersion (moto: 500)", (code, http) == ("NoSuchVersion", 404), (code, http))
    code, http, _ = error_of(lambda: s3.put_object_legal_hold(Bucket=bucket, Key="nokey", LegalHold={"Status": "ON"}))
    check("a hold on a missing key is 404 NoSuchKey", (code, http) == ("NoSuchKey", 404), (code, http))
    s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=version, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=bucket, Key="k", VersionId=version)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k").get("Versions", [])
    check("once lifted, the version can be deleted", not versions, versions)
    plain = unique("nolock")
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="k", Body=b"x")
    code, http, _ = error_of(lambda: s3.put_object_legal_hold(Bucket=plain, Key="k", LegalHold={"Status": "ON"}))
    check("a bucket without Object Lock refuses a hold (400)", (code, http) == ("InvalidRequest", 400), (code, http))


def test_cors(url: str) -> None:
    s3 = client(url, "s3", s3={"addressing_style": "path"})
    sqs = client(url, "sqs")
    bucket = unique("cors")
    s3.create_bucket(Bucket=bucket)
    console = "http://127.0.0.1:8080"
    key = "incoming/acme/http/01/big.bin"
    target = f"{url}/{bucket}/{key}?partNumber=1&uploadId=x"

    def preflight(origin: str) -> requests.Response:
        return requests.options(target, timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-amz-checksum-sha256"})

    r = preflight(console)
    check("cors: without rules, a preflight gets no Access-Control-Allow-Origin (moto: *)",
          "Access-Control-Allow-Origin" not in r.headers, dict(r.headers))
    q = sqs.create_queue(QueueName=unique("cors"))["QueueUrl"]
    r = requests.post(url, data={"Action": "GetQueueAttributes", "QueueUrl": q}, timeout=10,
                      headers={"Origin": "https://evil.example"})
    check("cors: another service's answer allows no origin either (moto: *)",
          "Access-Control-Allow-Origin" not in r.headers, dict(r.headers))
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["PUT"], "AllowedOrigins": [console],
        "AllowedHeaders": ["content-type", "x-amz-checksum-sha256"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}]})
    r = preflight(console)
    check("cors: the rule's origin is allowed PUT with the checksum header",
          r.status_code == 200 and r.headers.get("Access-Control-Allow-Origin") == console
          and "PUT" in r.headers.get("Access-Control-Allow-Methods", "")
          and "x-amz-checksum-sha256" in r.headers.get("Access-Control-Allow-Headers", ""),
          (r.status_code, dict(r.headers)))
    r = preflight("https://evil.example")
    check("cors: another origin's preflight is refused",
          r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers, (r.status_code, dict(r.headers)))
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.generate_presigned_url("upload_part", Params={"Bucket": bucket, "Key": key, "UploadId": upload, "PartNumber": 1})
    r = requests.put(part, data=b"part", headers={"Origin": console}, timeout=10)
    check("cors: a part sent from the console's origin is answered with its origin and the ETag exposed",
          r.status_code == 200 and r.headers.get("Access-Control-Allow-Origin") == console
          and "ETag" in r.headers.get("Access-Control-Expose-Headers", ""), (r.status_code, dict(r.headers)))


def test_multipart(url: str) -> None:
    s3 = client(url, "s3", s3={"addressing_style": "path"})
    bucket = unique("parts")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    key = "incoming/acme/http/01/big.bin"
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", ContentType="application/pdf", Metadata={"owner": "acme"}
    )["UploadId"]
    parts = [os.urandom(5 << 20), os.urandom(5 << 20), b"last part"]

    def presigned_put(number: int, data: bytes, checksum_of: bytes) -> requests.Response:
        checksum = sha256_b64(checksum_of)
        target = s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload, "PartNumber": number, "ChecksumSHA256": checksum},
        )
        return requests.put(target, data=data, headers={"x-amz-checksum-sha256": checksum}, timeout=30)

    corrupted = bytearray(parts[0])
    corrupted[1000] ^= 0xFF
    r = presigned_put(1, bytes(corrupted), parts[0])
    check("a part whose bytes are not its signed SHA-256 is refused (moto: accepted)",
          (r.status_code, xml_value(r.content, "Code")) == (400, "BadDigest"), (r.status_code, r.text[:200]))
    etags = {}
    for number in (3, 1):
        r = presigned_put(number, parts[number - 1], parts[number - 1])
        etags[number] = r.headers.get("ETag")
        check(f"part {number} through a presigned request is stored and its checksum echoed",
              r.status_code == 200 and r.headers.get("x-amz-checksum-sha256") == sha256_b64(parts[number - 1]),
              (r.status_code, dict(r.headers)))
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload, MaxParts=1)
    check("ListParts pages by part number (moto: skipped parts after a gap)",
          [p["PartNumber"] for p in listed["Parts"]] == [1] and listed.get("IsTruncated") is True,
          listed.get("Parts"))
    raw = requests.get(f"{url}/{bucket}/{key}?uploadId={upload}", timeout=10).text
    check("ListParts answers a ListPartsResult (moto: ListPartsResponse)", "<ListPartsResult" in raw, raw[:200])
    rest = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload, PartNumberMarker=listed["NextPartNumberMarker"])
    check("the next page holds the part after the gap", [p["PartNumber"] for p in rest["Parts"]] == [3], rest.get("Parts"))
    check("ListParts returns each part's SHA-256 (moto: none)",
          rest["Parts"][0].get("ChecksumSHA256") == sha256_b64(parts[2]), rest["Parts"])
    r = presigned_put(2, parts[1], parts[1])
    etags[2] = r.headers.get("ETag")
    code, http, _ = error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (2, 1, 3)]}))
    check("parts out of order are refused (400 InvalidPartOrder)", (code, http) == ("InvalidPartOrder", 400), (code, http))
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n], "ChecksumSHA256": sha256_b64(parts[n - 1])}
                                   for n in (1, 2, 3)]})
    body = s3.get_object(Bucket=bucket, Key=key)
    check("the completed object is the parts in order, with its type and metadata",
          body["Body"].read() == b"".join(parts) and body["ContentType"] == "application/pdf"
          and body["Metadata"] == {"owner": "acme"} and bool(done.get("VersionId")), done)
    code, http, _ = error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[1]}]}))
    # AWS answers a repeated complete with the same object for a while, NoSuchUpload later;
    # intake handles both (NoSuchUpload: it looks for the object).
    check("completing a completed upload succeeds again or is 404 NoSuchUpload",
          (code, http) in ((None, 200), ("NoSuchUpload", 404)), (code, http))
    code, http, _ = error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId="never-started", MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[1]}]}))
    check("completing an unknown upload is 404 NoSuchUpload (moto: 500)", (code, http) == ("NoSuchUpload", 404), (code, http))
    r = presigned_put(1, parts[0], parts[0])
    check("a part for an upload that is gone is 404 NoSuchUpload (moto: 500)",
          (r.status_code, xml_value(r.content, "Code")) == (404, "NoSuchUpload"), (r.status_code, r.text[:200]))
    aborted = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=aborted)
    code, http, _ = error_of(lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=aborted))
    check("an aborted upload's parts are 404 NoSuchUpload", (code, http) == ("NoSuchUpload", 404), (code, http))


def test_copy_limits(url: str) -> None:
    s3 = client(url, "s3", s3={"addressing_style": "path"})
    bucket = unique("copies")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    other = unique("copies")
    s3.create_bucket(Bucket=other)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "intake-moto:copy-source-limit", "Value": str(COPY_LIMIT)}]})
    small, large = os.urandom(1 << 20), os.urandom(COPY_LIMIT + (5 << 20))
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    put = s3.put_object(Bucket=bucket, Key="large", Body=large)
    version, etag = put["VersionId"], put["ETag"]
    check("CopyObject at most the limit copies", error_of(lambda: s3.copy_object(
        Bucket=bucket, Key="small-copy", CopySource=f"{bucket}/small"))[0] is None)
    code, status, message = error_of(lambda: s3.copy_object(Bucket=bucket, Key="c", CopySource=f"{bucket}/large"))
    check("CopyObject of a larger source -> 400 InvalidRequest, AWS's message (moto: copied)",
          (code, status) == ("InvalidRequest", 400)
          and message == f"The specified copy source is larger than the maximum allowable size for a copy source: {COPY_LIMIT}",
          (code, status, message))
    check("nothing is copied when it fails", error_of(lambda: s3.head_object(Bucket=bucket, Key="c"))[1] == 404)
    check("a bucket without the tag has AWS's 5 GiB limit", error_of(lambda: s3.copy_object(
        Bucket=other, Key="c", CopySource=f"{bucket}/large"))[0] is None)

    upload = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    source = {"Bucket": bucket, "Key": "large", "VersionId": version}

    def part(number: int, **kw: Any) -> Any:
        return lambda: s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=number,
                                           CopySource=source, **kw)

    code, status, _ = error_of(part(1))
    check("UploadPartCopy of a whole source larger than the limit -> 400 InvalidRequest (moto: copied)",
          (code, status) == ("InvalidRequest", 400), (code, status))
    half = COPY_LIMIT  # parts but the last are at least 5 MiB
    code, status, _ = error_of(part(1, CopySourceRange=f"bytes=0-{half - 1}", CopySourceIfMatch='"0000"'))
    check("UploadPartCopy with another ETag in -if-match -> 412 (moto: copied)",
          (code, status) == ("PreconditionFailed", 412), (code, status))
    first = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=1, CopySource=source,
                                CopySourceRange=f"bytes=0-{half - 1}", CopySourceIfMatch=etag)
    second = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=2, CopySource=source,
                                 CopySourceRange=f"bytes={half}-{len(large) - 1}", CopySourceIfMatch=etag.strip('"'))
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]})
    body = s3.get_object(Bucket=bucket, Key="copied")["Body"].read()
    check("ranges within the limit, pinned by version and ETag, copy the source in parts", body == large,
          (len(body), len(large)))


def launcher_io() -> tuple[int, int]:
    """Bytes the launcher has read and written so far (its /proc io counters)."""
    fields = dict(line.split(": ") for line in open(f"/proc/{LAUNCHER_PID}/io").read().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


def test_large_objects(url: str) -> None:
    s3 = client(url, "s3", s3={"addressing_style": "path"})
    bucket = unique("large")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    size = 64 << 20  # beyond moto's in-memory buffer (5 MiB): kept in a temporary file
    first, second = os.urandom(size), os.urandom(size)
    old = s3.put_object(Bucket=bucket, Key="big", Body=first)["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="big", Body=second)["VersionId"]
    s3.put_object(Bucket=bucket, Key="small/one", Body=b"1")

    _, written = launcher_io()
    listed = s3.list_object_versions(Bucket=bucket, Prefix="small/")
    check("ListObjectVersions of another prefix lists it", [v["Key"] for v in listed.get("Versions", [])] == ["small/one"])
    _, after = launcher_io()
    check("ListObjectVersions writes no copy of the bucket's objects (moto: 2 x 64 MiB written)",
          after - written < (1 << 20), after - written)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="big")["Versions"]
    check("the latest version is marked, the older not",
          sorted((v["VersionId"], v["IsLatest"]) for v in versions) == sorted([(old, False), (new, True)]), versions)
    check("the listed objects' bytes are intact after their copies are gone",
          s3.get_object(Bucket=bucket, Key="big", VersionId=old)["Body"].read() == first
          and s3.get_object(Bucket=bucket, Key="big")["Body"].read() == second)

    read, _ = launcher_io()
    start = 40 << 20
    part = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{start + (1 << 20) - 1}")
    body = part["Body"].read()
    after, _ = launcher_io()
    check("a ranged GET answers the range", body == second[start:start + (1 << 20)]
          and part["ContentRange"] == f"bytes {start}-{start + (1 << 20) - 1}/{size}", part.get("ContentRange"))
    check("a ranged GET reads the range, not the object (moto: 64 MiB read)", after - read < (8 << 20), after - read)
    tail = s3.get_object(Bucket=bucket, Key="big", VersionId=old, Range=f"bytes={size - 10}-")
    check("an open-ended range of a version reads to its end", tail["Body"].read() == first[-10:]
          and tail["ContentRange"] == f"bytes {size - 10}-{size - 1}/{size}")
    suffix = s3.get_object(Bucket=bucket, Key="big", Range="bytes=-7")["Body"].read()
    check("a suffix range is moto's own, still right", suffix == second[-7:])
    code, status, _ = error_of(lambda: s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={size}-"))
    check("a range beyond the end -> 416 InvalidRange", (code, status) == ("InvalidRange", 416), (code, status))
    over = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={size - 3}-{size + 100}")
    check("a range past the end is cut at the end", over["Body"].read() == second[-3:])

    _, written = launcher_io()
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big", "VersionId": old})
    _, after = launcher_io()
    check("CopyObject does not write the bytes again (moto: 64 MiB written)", after - written < (1 << 20), after - written)
    check("the copy's ETag is its bytes' MD5", copied["CopyObjectResult"]["ETag"].strip('"') == hashlib.md5(first).hexdigest())
    again = s3.copy_object(Bucket=bucket, Key="copy-of-copy", CopySource={"Bucket": bucket, "Key": "copy"})
    for version in (old, new):
        s3.delete_object(Bucket=bucket, Key="big", VersionId=version)
    check("a copy keeps its bytes when its source is deleted",
          s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == first)
    s3.delete_object(Bucket=bucket, Key="copy", VersionId=copied["VersionId"])
    check("a copy of a copy keeps them when both are deleted",
          s3.get_object(Bucket=bucket, Key="copy-of-copy", VersionId=again["VersionId"])["Body"].read() == first)
    s3.put_object(Bucket=bucket, Key="copy-of-copy", Body=b"new")
    check("a new write of a copied key is a key of its own",
          s3.get_object(Bucket=bucket, Key="copy-of-copy")["Body"].read() == b"new"
          and s3.get_object(Bucket=bucket, Key="copy-of-copy", VersionId=again["VersionId"])["Body"].read() == first)
    ranged = s3.get_object(Bucket=bucket, Key="copy-of-copy", VersionId=again["VersionId"], Range="bytes=100-199")
    check("a ranged GET of a copy reads the copied bytes", ranged["Body"].read() == first[100:200])

    plain = unique("large")  # without versioning a write replaces the key (moto disposes the old one)
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="src", Body=first)
    s3.copy_object(Bucket=plain, Key="dst", CopySource={"Bucket": plain, "Key": "src"})
    s3.put_object(Bucket=plain, Key="src", Body=second)
    check("unversioned: a copy keeps its bytes when its source is overwritten",
          s3.get_object(Bucket=plain, Key="dst")["Body"].read() == first
          and s3.get_object(Bucket=plain, Key="src")["Body"].read() == second)
    s3.copy_object(Bucket=plain, Key="dst", CopySource={"Bucket": plain, "Key": "dst"},
                   MetadataDirective="REPLACE", Metadata={"k": "v"})
    in_place = s3.get_object(Bucket=plain, Key="dst")
    check("unversioned: a copy onto itself keeps its bytes", in_place["Body"].read() == first
          and in_place["Metadata"] == {"k": "v"})


def main() -> int:
    global LAUNCHER_PID
    proc, url, log = start_launcher()
    LAUNCHER_PID = proc.pid
    print(f"launcher on {url} (log: {log})", flush=True)
    try:
        for name, fn in [
            ("transaction rollback", test_transaction_rollback),
            ("concurrency", test_concurrency),
            ("sqs long poll", test_sqs_long_poll),
            ("sqs fair queues", test_sqs_fair_queue),
            ("sns http delivery", test_sns_http_delivery),
            ("client request token", test_client_request_token),
            ("ttl", test_ttl),
            ("s3 conditionals", test_s3_conditionals),
            ("put checksums", test_put_checksums),
            ("post object", test_post_object),
            ("accounts", test_accounts),
            ("legal hold", test_legal_hold),
            ("multipart", test_multipart),
            ("cors", test_cors),
            ("copy limits", test_copy_limits),
            ("large objects", test_large_objects),
        ]:
            run_section(name, fn, url)
    finally:
        stop(proc)
    failed = [name for name, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed", flush=True)
    if failed:
        print(f"launcher log: {log}", flush=True)
        return 1
    os.remove(log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
