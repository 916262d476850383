"""Peer of intake's dynamodb-stream function, in Python under awslambdaric with boto3: the same
work on the same batch. Document images are decoded (boto3's TypeDeserializer) and checked;
each change is classified; per-owner statistics and blob reference counts are written in
DynamoDB transactions of up to 100 items (a marker per record, sums per owner and per blob);
events go to SNS with PublishBatch, ten at a time and at most one per document per call, with
`type` and `owner` message attributes. Failed records are reported (batchItemFailures) with
the records after them of the same document. Written plainly, as a Python developer would.
"""
import json
import os
import time
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer

TABLE = os.environ["TABLE_NAME"]
TOPIC = os.environ["TOPIC_ARN"]
dynamodb = boto3.client("dynamodb")
sns = boto3.client("sns")
_deserialize = TypeDeserializer().deserialize

STATUSES = {"received", "accepted", "duplicate", "rejected", "deleted"}
EVENTS = {"accepted": "document.accepted", "duplicate": "document.duplicate",
          "rejected": "document.rejected", "deleted": "document.deleted"}
REQUIRED = ("id", "owner", "name", "status", "created_at", "updated_at", "version")
TABLE_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "entity", "ttl"}
APPLIED_TTL = 7 * 24 * 3600
TRANSACTION_ITEMS = 100


def plain(v):
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def is_document(item):
    return item.get("entity", {}).get("S") == "document" or item.get("pk", {}).get("S", "").startswith("DOC#")


def document(image):
    if not image:
        return None
    d = {k: plain(_deserialize(v)) for k, v in image.items() if k not in TABLE_KEYS}
    missing = [f for f in REQUIRED if f not in d]
    if missing:
        raise ValueError(f"missing {missing}")
    if d["status"] not in STATUSES:
        raise ValueError(f"unknown status {d['status']!r}")
    return d


def classify(old, new):
    if new is None:
        return None
    if old is not None and old["status"] == new["status"]:
        changed = old["name"] != new["name"] or old.get("tags") != new.get("tags")
        return "document.updated" if changed else None
    return EVENTS.get(new["status"])


def stat_deltas(old, new):
    size = lambda d: d.get("size") or 0
    if old is not None and new is not None and old["status"] == new["status"]:
        return [(new["status"], 0, size(new) - size(old))] if size(old) != size(new) else []
    out = []
    if old is not None:
        out.append((old["status"], -1, -size(old)))
    if new is not None:
        out.append((new["status"], 1, size(new)))
    return out


def blob_delta(old, new):
    uses = lambda d: d.get("sha256") if d is not None and d["status"] in ("accepted", "duplicate") else None
    before, after = uses(old), uses(new)
    if before is None and after is not None:
        return (after, 1)
    if before is not None and after is None:
        return (before, -1)
    return None


def transaction(changes):
    expires = str(int(time.time()) + APPLIED_TTL)
    items, owners, blobs = [], {}, {}
    for record_id, owner, deltas, blob in changes:
        items.append({"Put": {"TableName": TABLE, "Item": {
            "pk": {"S": f"APPLIED#{record_id}"}, "sk": {"S": "APPLIED"}, "entity": {"S": "applied"},
            "ttl": {"N": expires}}, "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": "pk"}}})
        sums = owners.setdefault(owner, {})
        for status, docs, size in deltas:
            d, b = sums.get(status, (0, 0))
            sums[status] = (d + docs, b + size)
        if blob:
            blobs[blob[0]] = blobs.get(blob[0], 0) + blob[1]
    for owner, sums in owners.items():
        names, values, adds = {"#entity": "entity"}, {":entity": {"S": "stats"}}, []
        for i, (status, (d, b)) in enumerate(x for x in sums.items() if x[1] != (0, 0)):
            names[f"#d{i}"], names[f"#b{i}"] = f"{status}_documents", f"{status}_bytes"
            values[f":d{i}"], values[f":b{i}"] = {"N": str(d)}, {"N": str(b)}
            adds.append(f"#d{i} :d{i}, #b{i} :b{i}")
        if adds:
            items.append({"Update": {"TableName": TABLE, "Key": {"pk": {"S": f"STATS#{owner}"}, "sk": {"S": "STATS"}},
                                     "UpdateExpression": "ADD " + ", ".join(adds) + " SET #entity = :entity",
                                     "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}})
    for sha, delta in blobs.items():
        if delta:
            items.append({"Update": {"TableName": TABLE, "Key": {"pk": {"S": f"BLOB#{sha}"}, "sk": {"S": "BLOB"}},
                                     "UpdateExpression": "ADD #refs :d SET #entity = :entity",
                                     "ExpressionAttributeNames": {"#refs": "refs", "#entity": "entity"},
                                     "ExpressionAttributeValues": {":d": {"N": str(delta)}, ":entity": {"S": "blob"}}}})
    dynamodb.transact_write_items(TransactItems=items)


def chunks(changes):
    start = 0
    while start < len(changes):
        owners, blobs, end = set(), set(), start
        while end < len(changes):
            _, owner, _, blob = changes[end]
            count = (end - start + 1) + len(owners | {owner}) + len(blobs | ({blob[0]} if blob else set()))
            if count > TRANSACTION_ITEMS:
                break
            owners.add(owner)
            if blob:
                blobs.add(blob[0])
            end += 1
        end = max(end, start + 1)
        yield start, end
        start = end


def handler(event, context):
    records = event["Records"]
    failed = set()  # indexes of failed records
    changes, stats = [], []
    for i, record in enumerate(records):
        image = record["dynamodb"]
        keys, new, old = image.get("Keys", {}), image.get("NewImage", {}), image.get("OldImage", {})
        if not (is_document(keys) or is_document(new) or is_document(old)):
            continue
        try:
            before, after = document(old), document(new)
        except (ValueError, TypeError) as e:
            print(json.dumps({"level": "ERROR", "message": "poison record", "record": image.get("SequenceNumber"), "problem": str(e)}))
            failed.add(i)
            continue
        changes.append((i, before, after, image.get("ApproximateCreationDateTime", 0)))
        owner = (after or before)["owner"]
        deltas, blob = stat_deltas(before, after), blob_delta(before, after)
        if deltas or blob:
            stats.append((i, (record["eventID"], owner, deltas, blob)))
    for start, end in chunks([s for _, s in stats]):
        try:
            transaction([s for _, s in stats[start:end]])
        except Exception as e:
            print(json.dumps({"level": "ERROR", "message": "statistics not updated", "error": str(e)}))
            failed.update(i for i, _ in stats[start:end])

    def partition(i):
        return records[i]["dynamodb"].get("Keys", {}).get("pk", {}).get("S", "")

    first_failure = {}
    for i in sorted(failed):
        first_failure.setdefault(partition(i), i)
    events = []
    for i, before, after, at in changes:
        kind = classify(before, after)
        if kind and partition(i) not in first_failure:
            events.append((i, {"version": 1, "id": records[i]["eventID"], "type": kind, "owner": after["owner"],
                               "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)), "document": after,
                               "previous_status": before["status"] if before else None}))
    while events:
        batch, documents = [], set()
        while events and len(batch) < 10 and partition(events[0][0]) not in documents:
            documents.add(partition(events[0][0]))
            batch.append(events.pop(0))
        entries = [{"Id": str(n), "Message": json.dumps(e),
                    "MessageAttributes": {"type": {"DataType": "String", "StringValue": e["type"]},
                                          "owner": {"DataType": "String", "StringValue": e["owner"]}}}
                   for n, (_, e) in enumerate(batch)]
        try:
            out = sns.publish_batch(TopicArn=TOPIC, PublishBatchRequestEntries=entries)
            bad = [batch[int(f["Id"])][0] for f in out.get("Failed", [])]
        except Exception as e:
            print(json.dumps({"level": "ERROR", "message": "events not published", "error": str(e)}))
            bad = [i for i, _ in batch]
        for i in bad:
            first_failure[partition(i)] = min(first_failure.get(partition(i), i), i)
    return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for i, r in enumerate(records)
                                  if partition(i) in first_failure and first_failure[partition(i)] <= i]}
