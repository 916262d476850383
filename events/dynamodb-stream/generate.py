#!/usr/bin/env python3
"""Writes the sample DynamoDB stream events for the dynamodb-stream function.

Run from anywhere: python3 events/dynamodb-stream/generate.py  (--check: fail if the files differ)
Items are shaped as intake's table stores them (crates/aws/src/schema.rs) and as DynamoDB
Streams delivers them to Lambda (NEW_AND_OLD_IMAGES). Deterministic: no clock, no randomness.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/intake-dev-Table-1ABCDEF/stream/2026-11-27T00:00:00.000"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms, rand):
    n = (ms << 80) | rand
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def ddb(v):
    if v is None:
        return {"NULL": True}
    if isinstance(v, bool):
        return {"BOOL": v}
    if isinstance(v, (int, float)):
        return {"N": str(v)}
    if isinstance(v, str):
        return {"S": v}
    if isinstance(v, list):
        return {"L": [ddb(x) for x in v]}
    if isinstance(v, dict):
        return {"M": {k: ddb(x) for k, x in v.items()}}
    raise TypeError(v)


def item(d):
    return {k: ddb(v) for k, v in d.items()}


T0 = 1_795_770_000_000  # 2026-11-27T09:00:00Z in ms


def document(n, status="accepted", owner="acme", name=None, tags=None, size=1024, version=2, extra=None):
    doc_id = ulid(T0 + n, n)
    sha = "%064x" % (n * 0x9E3779B97F4A7C15 % (1 << 256))
    d = {
        "pk": f"DOC#{doc_id}", "sk": "DOC", "gsi1pk": f"OWNER#{owner}#DOC", "gsi1sk": doc_id, "entity": "document",
        "id": doc_id, "owner": owner, "name": name or f"document-{n}.pdf",
        "declared_type": "application/pdf", "content_type": "application/pdf" if status != "received" else None,
        "size": size, "sha256": sha, "tags": tags or [], "source": {"kind": "http"}, "status": status,
        "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:00:01Z", "version": version,
    }
    d.update(extra or {})
    return d


def record(seq, name, keys, new=None, old=None, epoch=1795770001):
    change = {"ApproximateCreationDateTime": epoch, "Keys": item(keys), "SequenceNumber": f"{seq:021d}",
              "SizeBytes": 512, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        change["NewImage"] = item(new)
    if old is not None:
        change["OldImage"] = item(old)
    return {"eventID": f"{seq:032x}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": change, "eventSourceARN": ARN}


def keys(d):
    return {"pk": d["pk"], "sk": d["sk"]}


def insert(seq, d):
    return record(seq, "INSERT", keys(d), new=d)


def modify(seq, old, new):
    return record(seq, "MODIFY", keys(new), new=new, old=old)


def events():
    out = {}
    received = document(1, "received", version=1)
    accepted = document(1, "accepted")
    out["insert"] = [insert(100, document(2, "accepted", version=1))]
    out["modify"] = [
        modify(101, received, accepted),
        modify(102, accepted, dict(accepted, name="renamed.pdf", tags=["q4"], version=3)),
    ]
    deleted = dict(accepted, status="deleted", deleted_at="2026-11-27T10:00:00Z", version=3)
    out["remove"] = [
        modify(103, accepted, deleted),
        record(104, "REMOVE", keys(accepted), old=deleted),
    ]
    rejected = document(3, "rejected", version=1, extra={"rejection": {"code": "type_mismatch", "message": "declared as application/pdf but the content is image/png"}})
    poison = dict(document(4, "accepted"), status="teleported")
    out["batch-with-poison"] = [
        insert(110, document(5, "accepted", version=1)),
        insert(111, poison),
        insert(112, rejected),
        modify(113, poison, dict(poison, name="still-broken.pdf")),
        insert(114, document(6, "accepted", owner="globex", version=1)),
    ]
    # The table's TTL removing a retention marker (DynamoDB spells the service's identity so).
    kept = document(7, "accepted", version=1)
    marker = {"pk": f"RETAIN#{kept['id']}", "sk": "RETAIN", "entity": "retention", "owner": "acme",
              "due": "2026-11-28T09:00:00Z", "expires_at": 1795856400}
    expired = record(131, "REMOVE", keys(marker), old=marker, epoch=1795856460)
    expired["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    out["retention"] = [insert(130, kept), expired]
    out["non-document"] = [
        insert(120, {"pk": "TOKEN#" + "ab" * 32, "sk": "TOKEN", "entity": "token", "gsi1pk": "OWNER#acme#TOKEN", "gsi1sk": ulid(T0, 9), "owner": "acme", "label": "ci"}),
        record(121, "MODIFY", {"pk": "STATS#acme", "sk": "STATS"}, new={"pk": "STATS#acme", "sk": "STATS", "entity": "stats", "accepted_documents": 3}, old={"pk": "STATS#acme", "sk": "STATS", "entity": "stats", "accepted_documents": 2}),
        insert(122, {"pk": "CONTENT#acme#" + "cd" * 32, "sk": "CONTENT", "entity": "content", "document_id": ulid(T0, 1)}),
    ]
    batch = []
    for i in range(1000):
        n = 1000 + i
        if i % 4 == 0:
            batch.append(insert(1000 + i, document(n, "received", owner=f"owner-{i % 7}", version=1)))
        elif i % 4 == 1:
            batch.append(modify(1000 + i, document(n, "received", owner=f"owner-{i % 7}", version=1), document(n, "accepted", owner=f"owner-{i % 7}")))
        elif i % 4 == 2:
            batch.append(insert(1000 + i, document(n, "accepted", owner=f"owner-{i % 7}", version=1)))
        else:
            old = document(n, "accepted", owner=f"owner-{i % 7}")
            batch.append(modify(1000 + i, old, dict(old, tags=["batch"], version=3)))
    out["batch-1000"] = batch
    return {name: {"Records": recs} for name, recs in out.items()}


def main():
    check = "--check" in sys.argv
    stale = []
    for name, event in events().items():
        path = os.path.join(HERE, f"{name}.json")
        text = (json.dumps(event, separators=(",", ":")) if name == "batch-1000" else json.dumps(event, indent=2)) + "\n"
        if check:
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(path)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit("stale sample events (run events/dynamodb-stream/generate.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
