#!/usr/bin/env python3
"""moto_server (moto 5.2.5) with the fixes the intake project needs to behave like AWS.

Usage: same as moto_server, e.g.

    .venv/bin/python scripts/lib/intake_moto.py -H 127.0.0.1 -p 5000

Every moto_server argument is accepted: after patching, this calls moto.server.main().
The test is scripts/lib/test_intake_moto.py.  Each patch: what AWS does, what moto 5.2.5
does, and what the patch changes.

1. One request at a time.  AWS serves concurrent clients consistently.  moto 5.2.5 runs each
   request in its own werkzeug thread over models that are not thread-safe: concurrent
   writers lose acknowledged writes or get HTTP 500s.  The patch runs every request (and the
   TTL sweeper, patch 4) under one global lock, let go while moto waits for another request
   (SQS ReceiveMessage long polling) or talks to the outside world (SNS -> HTTP subscriber
   POSTs, which also get a 30 s timeout), so that neither can deadlock the server.

2. DynamoDB TransactWriteItems rollback.  AWS cancels a transaction without touching
   anything.  moto 5.2.5 deep-copies every table the transaction names and, on cancellation,
   puts the copies in their place: that replaces the Table and its stream shard (Streams
   iterators handed out earlier keep reading an orphaned shard), races concurrent writers,
   and undoes their writes made meanwhile.  The patch keeps a journal instead: before each
   Put/Update/Delete it saves a copy of the one item it is about to write (or "absent"), and
   on cancellation (or any error) restores exactly those items and truncates the stream
   records the transaction appended.  Table objects are never replaced.

3. DynamoDB TransactWriteItems ClientRequestToken.  AWS: a repeated call with the same token,
   within 10 minutes of the first one completing and with the same parameters, succeeds
   without being applied again; the same token with other parameters fails with
   IdempotentParameterMismatchException (HTTP 400).  moto 5.2.5 ignores the token, so a
   replay runs again (an ADD counts twice, an attribute_not_exists Put is cancelled).  The
   patch remembers successful calls by (account, region, token) with a fingerprint of the
   request (canonical JSON of all but the token, so key order does not matter): a matching
   replay within 600 s gets moto's usual success answer without running, another request
   gets IdempotentParameterMismatchException.  A call that failed (validation error,
   cancelled transaction) is not remembered, so its retry runs.

4. DynamoDB TTL.  AWS deletes items whose TTL attribute (a top-level Number, epoch seconds)
   is in the past but not more than five years in the past, and the table's stream gets a
   REMOVE record with "userIdentity": {"Type": "Service", "PrincipalId":
   "dynamodb.amazonaws.com"} (the DynamoDB Streams API spelling; Lambda's event for the same
   record spells them "type" and "principalId").  moto 5.2.5 only stores the TTL setting and
   never deletes anything.  The patch runs a daemon thread that, every
   INTAKE_MOTO_TTL_INTERVAL seconds (default 1) and under the global lock, deletes the expired
   items of every table with TTL enabled through moto's own DeleteItem path, so the stream
   gets its REMOVE record, made with that userIdentity.  (AWS deletes within a few days;
   this within one interval.)

5. S3 CopyObject x-amz-copy-source-if-match.  AWS copies only if the source's ETag matches
   (quoted or unquoted, or "*"), else 412 PreconditionFailed.  moto 5.2.5 checks only
   x-amz-copy-source-if-none-match and copies whatever -if-match says.  The patch checks
   -if-match against the source (the version named by ?versionId=, if any) before moto copies.

6. S3 HeadObject If-Match / If-None-Match.  AWS accepts an ETag quoted or unquoted (and "*").
   moto 5.2.5's HeadObject compares the header with the quoted ETag as a string, so a correct
   unquoted ETag gets 412 (If-Match) or 200 instead of 304 (If-None-Match).  The patch
   compares both headers with the object's ETag by value before moto sees them.  (moto's
   GetObject already accepts both spellings.)  It also adds x-amz-checksum-type to a
   HeadObject with x-amz-checksum-mode: ENABLED, which moto sets only on GetObject.

7. S3 DeleteObject If-Match.  AWS: "Conditional delete evaluations only apply to the current
   version of the object", also when a VersionId is given, and If-Match: * means "the current
   version exists".  moto 5.2.5 also compares with the current version, so that is kept as
   it is; but it compares "*" with the ETag and answers 412.  The patch makes "*" match.

8. S3 PutObject checksums.  AWS verifies an x-amz-checksum-<algorithm> sent as a header or
   as an aws-chunked trailer (named by x-amz-trailer) against the decoded body: a mismatch is
   400 BadDigest ("The SHA256 you specified did not match the calculated checksum."); the
   value is stored, and HeadObject/GetObject with x-amz-checksum-mode: ENABLED return it with
   x-amz-checksum-type: FULL_OBJECT.  moto 5.2.5 never verifies; stores the value only when
   x-amz-sdk-checksum-algorithm is also sent; looks for a trailer with a regular expression
   over the whole raw body (so data that looks like a trailer wins); computes CRC32C as CRC32
   without the crc32c module; and decodes an aws-chunked body only for the STREAMING-*
   x-amz-content-sha256 values.  The patch decodes any aws-chunked PutObject body itself
   (checking x-amz-decoded-content-length), reads the trailers after the last chunk,
   verifies the checksum (CRC32, SHA1, SHA256; CRC32C and CRC64NVME through awscrt), and
   stores the decoded body and the checksum, of type FULL_OBJECT.  UploadPart is unchanged.

9. S3 POST object (browser form upload with a SigV4 POST policy).  AWS checks the SigV4
   signature of the base64 policy, the policy's expiration and every condition ({"f": v},
   ["eq", "$f", v], ["starts-with", "$f", prefix], ["content-length-range", min, max]; field
   names case-insensitive; a condition on an absent field fails); every form field except
   x-amz-signature, file, policy and x-ignore-*, and the bucket (from the URL), must have a
   condition; it verifies an x-amz-checksum-* field against the file and stores it; it
   answers 204 with ETag and Location headers, or 200, or 201 with a PostResponse document.
   moto 5.2.5 checks none of it (an expired, unsigned or violated policy uploads anyway),
   ignores the checksum field, and answers without an ETag and with an empty 201.  The patch
   does all of it as AWS does, with the secret keys in POST_CREDENTIALS: "local" (the local
   stack's key) and "testing" (the tests'), and "local" for any 12-digit access key (an
   account's key, patch 9).  SigV2 forms are refused.  The S3 event notifications moto sends
   for POST uploads are left as they are.

9. Accounts by access key.  In AWS a caller's credentials belong to one account, and the
   resources it creates are that account's.  moto 5.2.5 puts every caller whose access key it
   did not issue into account 123456789012.  The patch makes a 12-digit access key name its
   account (read from the Authorization header, or X-Amz-Credential of a presigned URL), so
   that stacks deployed side by side in one local AWS (a test each) have their own ARNs, as
   stacks in separate accounts do.  Other keys keep moto's behaviour.

10. S3 PutObjectLegalHold on a version that is not there.  AWS answers 404 NoSuchVersion
   (NoSuchKey without a VersionId).  moto 5.2.5 raises an AttributeError on None: HTTP 500,
   which the SDKs retry as a server error.  The patch raises the 404s.  (The rest of Object
   Lock's legal hold, checked in the test: the configuration can be put on an existing
   versioned bucket; a held version refuses DeleteObject with its VersionId and
   DeleteObjects with 403 AccessDenied; a delete without a VersionId adds a delete marker;
   a bucket without the configuration refuses a hold with 400 InvalidRequest.)

11. S3 multipart uploads.  AWS verifies an UploadPart's x-amz-checksum-<algorithm> (a header,
   as a presigned part request sends it, or an aws-chunked trailer) against the part: a
   mismatch is 400 BadDigest; the value is echoed and ListParts returns it per part
   (ChecksumSHA256).  An UploadPart or CompleteMultipartUpload of an upload that is not there
   is 404 NoSuchUpload; parts out of order in CompleteMultipartUpload are 400
   InvalidPartOrder; ListParts pages by part number (PartNumberMarker is the last number
   returned).  moto 5.2.5 verifies no part checksum and lists none; answers HTTP 500
   (KeyError) for an unknown upload on UploadPart and CompleteMultipartUpload; never raises
   InvalidPartOrder (its check never advances); and pages ListParts by position, skipping
   parts when the numbers have gaps; and names ListParts' root element ListPartsResponse
   instead of ListPartsResult (the Rust SDK refuses it).  The patch does each as AWS does.  (Left as moto has it:
   presigned URLs are not checked for expiry or signature, and a lifecycle rule that aborts
   incomplete uploads is stored but never applied.)

12. CORS.  S3 shares nothing with a browser of another origin unless the bucket's CORS rules
   allow it: a preflight from an origin no rule allows is 403, an allowed one is answered
   with the rule's methods, headers and max age, and a request from an allowed origin gets
   Access-Control-Allow-Origin and the rule's exposed headers.  moto 5.2.5's server adds
   "Access-Control-Allow-Origin: *" to every answer of every service (flask-cors) unless
   MOTO_DISABLE_GLOBAL_CORS is set, so a browser could use any bucket from any page.  The
   launcher sets it before moto is imported; moto's own bucket CORS rules then decide.

13. S3 copy limits.  AWS copies at most 5 GiB in one request: CopyObject of a larger source
   is 400 InvalidRequest ("The specified copy source is larger than the maximum allowable
   size for a copy source: 5368709120"), and so is an UploadPartCopy whose range (or whole
   source) is larger; larger objects are copied in parts.  UploadPartCopy also honours
   x-amz-copy-source-if-match (else 412 PreconditionFailed).  moto 5.2.5 copies any size in
   one request and ignores -if-match on UploadPartCopy.  The patch does both as AWS does.
   So that tests can take the multipart path with small objects, a destination bucket tagged
   intake-moto:copy-source-limit=<bytes> has that limit instead (INTAKE_MOTO_COPY_SOURCE_LIMIT
   changes the default).

14. S3 ListObjectVersions of a bucket with large objects.  AWS lists versions without reading
   them.  moto 5.2.5 deep-copies every version of every key in the bucket on each call (to mark
   the copies IsLatest), whatever the prefix, and a deep copy of a key writes its bytes again
   (to a temporary file beyond 5 MiB): with a 1 GiB object in the bucket each listing wrote
   1 GiB to /tmp and took seconds under the global lock, and a pipeline that lists a blob's
   versions filled the disk within minutes (then moto answered 500).  The patch makes such a
   copy a view of the key (its attributes copied shallowly, its bytes shared; closing the view
   leaves the bytes open): listing 600 versions took 0.2 s before, a few ms now.

15. S3 ranged GetObject.  AWS reads the range.  moto 5.2.5 reads the whole object into memory
   for every ranged GET and slices it: reading a 1 GiB object 8 MiB at a time read 128 GiB.
   The patch reads a single satisfiable range (bytes=a-b, bytes=a-) from the stored bytes
   only; other ranges (suffix, multiple, unsatisfiable) keep moto's behaviour.

16. S3 CopyObject of a large object.  AWS answers a copy's first byte at once (its 200 comes
   before the copy is done, then whitespace until it is), so a client's first-byte timeout
   bounds a stalled connection, not a large copy.  moto 5.2.5 answers when it has read the
   source whole into memory, written it again to a new temporary file and hashed it: about 6 s
   for 1 GiB on an idle 2-core machine, over 10 s (the functions' first-byte bound) beside a
   busy pipeline, so the s3 function's copy of a 1 GiB upload timed out on every try.  The
   patch makes a copy share the stored bytes of its source (moto never rewrites a stored
   key's bytes: a new write is a new key); the bytes are closed when the last key using them
   goes.  The copy is a key of its own as before: versions, metadata, tags, legal holds,
   deletion.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime
import hashlib
import hmac
import io
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlparse
from xml.dom import minidom
from xml.sax.saxutils import escape as xml_escape

# Patch 12: read by moto.settings at import.
os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")

import moto.server
from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import StreamRecord
from moto.dynamodb.responses import DynamoHandler
from moto.s3.exceptions import (
    InvalidPartOrder,
    MissingKey,
    MissingVersion,
    NoSuchUpload,
    PreconditionFailed,
    S3ClientError,
)
from moto.s3.models import FakeKey, FakeMultipart, S3Backend
from moto.s3.responses import S3Response
from werkzeug.datastructures import Headers

# ======================================================================================
# 1. The global lock
# ======================================================================================

GLOBAL_LOCK = threading.Lock()
_state = threading.local()  # _state.held: this thread holds GLOBAL_LOCK


@contextlib.contextmanager
def holding_global_lock() -> Iterator[None]:
    with GLOBAL_LOCK:
        _state.held = True
        try:
            yield
        finally:
            _state.held = False


class _Unlocked:
    """`with _Unlocked():` lets go of the global lock for the block, if this thread has it."""

    def __enter__(self) -> None:
        self.was_held = getattr(_state, "held", False)
        if self.was_held:
            _state.held = False
            GLOBAL_LOCK.release()

    def __exit__(self, *exc: Any) -> None:
        if self.was_held:
            GLOBAL_LOCK.acquire()
            _state.held = True


def _buffer_request_body(environ: dict[str, Any]) -> None:
    """Read the request body before taking the lock, so a slow uploader does not hold it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > 0 and "wsgi.input" in environ:
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))


class SerializedDispatcher(moto.server.DomainDispatcherApplication):
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _buffer_request_body(environ)
        with holding_global_lock():
            response = super().__call__(environ, start_response)
            # Produce the whole body under the lock: the iterable may be lazy.
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def _patch_sqs_long_polling() -> None:
    from moto.sqs.models import Queue

    def wait_for_messages(self: Any, timeout: int) -> None:
        # Take the queue's condition, then let go of the global lock: a SendMessage
        # (global lock, then this condition) cannot slip its notify in between.  The
        # global lock is taken back only after the condition is let go (lock order).
        released = False
        try:
            with self._messages_lock:
                if getattr(_state, "held", False):
                    _state.held = False
                    GLOBAL_LOCK.release()
                    released = True
                self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)
        finally:
            if released:
                GLOBAL_LOCK.acquire()
                _state.held = True

    Queue.wait_for_messages = wait_for_messages


def _patch_sqs_fair_queues() -> None:
    """SQS fair queues: on a standard queue, messages sent with a MessageGroupId are served
    so that one group's backlog does not hold back the others' messages (SQS reorders
    deliveries by tenant when one tenant's messages pile up).  moto serves a standard queue
    oldest first.  Modelled here: the visible messages are served round-robin over their
    groups, a group's messages already in flight counting as served, so a quiet group's new
    message is received before a noisy group's backlog.  Messages without a group form one
    group; FIFO queues are untouched (their groups are ordering, not fairness)."""
    from collections import Counter

    from moto.sqs.models import Queue

    def messages(self: Any) -> list[Any]:
        visible = [m for m in self._messages if m.visible and not m.delayed]
        if self.fifo_queue or not any(m.group_id for m in visible):
            return visible
        in_flight = Counter(m.group_id for m in self._messages if not m.visible)
        served: Counter = Counter()
        order = []
        for index, message in enumerate(visible):
            group = message.group_id
            order.append((in_flight[group] + served[group], index, message))
            served[group] += 1
        return [message for _, _, message in sorted(order, key=lambda o: (o[0], o[1]))]

    Queue.messages = property(messages)


def _patch_sns_http_delivery() -> None:
    import moto.sns.models as sns_models

    real_requests = sns_models.requests

    class _RequestsUnlocked:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_requests, name)

        def post(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", 30)
            with _Unlocked():
                return real_requests.post(*args, **kwargs)

    sns_models.requests = _RequestsUnlocked()


# ======================================================================================
# 2. TransactWriteItems with an item journal
# ======================================================================================


class _Journal:
    def __init__(self, backend: DynamoDBBackend) -> None:
        self.backend = backend
        self.items: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, saved item | None)
        self.streams: dict[int, tuple[Any, Any, int]] = {}  # id(table) -> (table, shard, length)

    def remember(self, table_name: str, key: dict[str, Any]) -> None:
        table = self.backend.get_table(table_name)
        hash_value, range_value = self.backend.get_keys_value(table, key)
        if id(table) not in self.streams:
            shard = table.stream_shard
            self.streams[id(table)] = (table, shard, len(shard.items) if shard else 0)
        if table.has_range_key:
            current = table.items.get(hash_value, {}).get(range_value)
        else:
            current = table.items.get(hash_value)
        self.items.append((table, hash_value, range_value, copy.deepcopy(current)))

    def rollback(self) -> None:
        for table, hash_value, range_value, saved in reversed(self.items):
            if table.has_range_key:
                if saved is not None:
                    table.items[hash_value][range_value] = saved
                else:
                    group = table.items.get(hash_value)
                    if group is not None:
                        group.pop(range_value, None)
                        if not group:
                            del table.items[hash_value]
            elif saved is not None:
                table.items[hash_value] = saved
            else:
                table.items.pop(hash_value, None)
        for table, shard, length in self.streams.values():
            # A Lambda event source mapping empties shard.items after delivering; what
            # was delivered cannot be taken back, so only truncate a shard that grew.
            if shard is not None and table.stream_shard is shard and len(shard.items) >= length:
                del shard.items[length:]
        self.items.clear()


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """DynamoDBBackend.transact_write_items (moto 5.2.5), rolled back by item, not by table."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = _Journal(self)
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[Any, Any, Any]] = []
    try:
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")

                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get(
                    "ReturnValuesOnConditionCheckFailure"
                )

                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]

                check_unicity(table_name, key)

                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(
                        condition_expression,
                        expression_attribute_names,
                        expression_attribute_values,
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                if op_type != "ConditionCheck":
                    journal.remember(table_name, key)
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # rolled back below
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - as moto does: report, do not raise
                errors.append((type(e).__name__, str(e), original_item))

        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
    except BaseException:
        journal.rollback()
        raise


# ======================================================================================
# 3. TransactWriteItems ClientRequestToken
# ======================================================================================

IDEMPOTENCY_WINDOW_S = 600  # "A client request token is valid for 10 minutes"

# (account, region, token) -> (fingerprint of the request, time.monotonic() of completion)
_completed_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}


class IdempotentParameterMismatchException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            self.error_type,
            message="The request uses the same client token as a previous, "
            "but non-identical request.",
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):  # B / BS attribute values, parsed to bytes
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def _request_fingerprint(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "ClientRequestToken"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


_stock_handler_transact_write_items = DynamoHandler.transact_write_items


def handler_transact_write_items(self: DynamoHandler) -> ActionResult:
    token = self.body.get("ClientRequestToken")
    if not token:
        return _stock_handler_transact_write_items(self)
    now = time.monotonic()
    for key, (_, done) in list(_completed_tokens.items()):
        if now - done >= IDEMPOTENCY_WINDOW_S:
            del _completed_tokens[key]
    key = (self.current_account, self.region, token)
    fingerprint = _request_fingerprint(self.body)
    if key in _completed_tokens:
        if _completed_tokens[key][0] != fingerprint:
            raise IdempotentParameterMismatchException()
        # A replay: the same answer as moto gives for a success, and nothing applied.
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _stock_handler_transact_write_items(self)  # raises if it did not succeed
    _completed_tokens[key] = (fingerprint, time.monotonic())
    return result


# ======================================================================================
# 4. TTL sweeper
# ======================================================================================

TTL_MAX_AGE_S = 5 * 365 * 24 * 3600  # AWS does not delete items expired more than 5 years ago
TTL_USER_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


def sweep_expired_items(now: float) -> int:
    """Deletes expired items from every table with TTL enabled; returns how many.

    The caller holds the global lock.
    """
    deleted = 0
    for account_id in list(dynamodb_backends.keys()):
        for backend in list(dict.values(dynamodb_backends[account_id])):
            for table in list(backend.tables.values()):
                ttl = getattr(table, "ttl", {}) or {}
                attribute = ttl.get("AttributeName")
                if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
                    continue
                for item in list(table.all_items()):
                    value = item.attrs.get(attribute)
                    if value is None or value.type != "N":
                        continue  # TTL only reads a top-level Number
                    try:
                        expires = float(value.value)
                    except (TypeError, ValueError):
                        continue
                    if not (now - TTL_MAX_AGE_S <= expires < now):
                        continue
                    key = {table.hash_key_attr: item.hash_key.to_json()}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = item.range_key.to_json()
                    # moto's own DeleteItem path: the stream gets its REMOVE record, made
                    # while _state.ttl_delete is set, so it carries TTL's userIdentity.
                    _state.ttl_delete = True
                    try:
                        backend.delete_item(table.name, key)
                    finally:
                        _state.ttl_delete = False
                    deleted += 1
    return deleted


_stock_stream_record_init = StreamRecord.__init__


def stream_record_init(self: StreamRecord, *args: Any, **kwargs: Any) -> None:
    _stock_stream_record_init(self, *args, **kwargs)
    if getattr(_state, "ttl_delete", False):
        self.record["userIdentity"] = dict(TTL_USER_IDENTITY)


def _ttl_sweeper(interval: float) -> None:
    while True:
        time.sleep(interval)
        try:
            with holding_global_lock():
                sweep_expired_items(time.time())
        except Exception:  # noqa: BLE001 - keep sweeping whatever one pass did
            traceback.print_exc()


def start_ttl_sweeper() -> threading.Thread:
    interval = max(0.05, float(os.environ.get("INTAKE_MOTO_TTL_INTERVAL", "1")))
    thread = threading.Thread(
        target=_ttl_sweeper, args=(interval,), name="ttl-sweeper", daemon=True
    )
    thread.start()
    return thread


# ======================================================================================
# 5-7. S3 conditional requests
# ======================================================================================


def etag_matches(etag: str, header: str) -> bool:
    """Whether an If-Match-style header names `etag`: quoted or not, a list, or "*"."""
    bare = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.strip('"') == bare:
            return True
    return False


def _copy_source_object(self: S3Response) -> Any:
    """The object CopyObject copies from, parsed as moto's copy_object does, or None."""
    copy_source = self.headers.get("x-amz-copy-source")
    if isinstance(copy_source, bytes):
        copy_source = copy_source.decode("utf-8")
    parsed = urlparse(copy_source)
    try:
        src_bucket, src_key = unquote(parsed.path).lstrip("/").split("/", 1)
        version_id = parse_qs(parsed.query).get("versionId", [None])[0]
        return self.backend.get_object(src_bucket, src_key, version_id=version_id)
    except (ValueError, S3ClientError):
        return None  # moto's copy_object reports it


_stock_copy_object = S3Response.copy_object


def copy_object(self: S3Response) -> Any:
    if_match = self.headers.get("x-amz-copy-source-if-match")
    if if_match is not None:
        source = _copy_source_object(self)
        if source is not None and not etag_matches(source.etag, if_match):
            raise PreconditionFailed("x-amz-copy-source-If-Match")
    source = _copy_source_object(self)
    limit = _copy_limit(self)
    if source is not None and source.size > limit:
        raise CopySourceTooLarge(limit)
    return _stock_copy_object(self)


# ======================================================================================
# 13. S3 copy limits
# ======================================================================================

COPY_SOURCE_LIMIT = int(os.environ.get("INTAKE_MOTO_COPY_SOURCE_LIMIT", str(5 * 1024**3)))


COPY_LIMIT_TAG = "intake-moto:copy-source-limit"


class CopySourceTooLarge(S3ClientError):
    code = 400

    def __init__(self, limit: int) -> None:
        super().__init__(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy "
            f"source: {limit}",
        )


def _copy_limit(self: S3Response) -> int:
    """The copy limit of the request's (destination) bucket: its tag, else the default."""
    try:
        tags = self.backend.get_bucket_tagging(self.bucket_name).get("Tags", [])
    except S3ClientError:
        return COPY_SOURCE_LIMIT
    for tag in tags:
        if tag.get("Key") == COPY_LIMIT_TAG:
            return int(tag["Value"])
    return COPY_SOURCE_LIMIT


def _copied_length(self: S3Response, source: Any) -> int:
    """How many bytes an UploadPartCopy copies: its range, or the whole source."""
    requested = self.headers.get("x-amz-copy-source-range", "")
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", requested.strip())
    if match:
        return int(match.group(2)) - int(match.group(1)) + 1
    return source.size


_stock_upload_part_copy = S3Response.upload_part_copy


def upload_part_copy(self: S3Response) -> Any:
    source = _copy_source_object(self)
    if source is not None:
        if_match = self.headers.get("x-amz-copy-source-if-match")
        if if_match is not None and not etag_matches(source.etag, if_match):
            raise PreconditionFailed("x-amz-copy-source-If-Match")
        limit = _copy_limit(self)
        if _copied_length(self, source) > limit:
            raise CopySourceTooLarge(limit)
    return _stock_upload_part_copy(self)


_stock_head_object = S3Response.head_object


def head_object(
    self: S3Response, bucket_name: str, query: dict[str, Any], key_name: str, headers: Any
) -> Any:
    version_id = query.get("versionId", [None])[0]
    try:
        key = self.backend.get_object(bucket_name, key_name, version_id=version_id)
    except S3ClientError:
        key = None
    if key is not None:
        # moto compares these two headers with key.etag as strings: hand it key.etag itself
        # when the header names the object, and leave out If-None-Match when it does not.
        headers = Headers(headers)
        if_match = headers.get("If-Match")
        if if_match and etag_matches(key.etag, if_match):
            headers["If-Match"] = key.etag
        if_none_match = headers.get("If-None-Match")
        if if_none_match:
            if etag_matches(key.etag, if_none_match):
                headers["If-None-Match"] = key.etag
            else:
                del headers["If-None-Match"]
    status, response_headers, body = _stock_head_object(self, bucket_name, query, key_name, headers)
    if (
        key is not None
        and status == 200
        and key.checksum_algorithm
        and f"x-amz-checksum-{key.checksum_algorithm.lower()}" in response_headers
    ):
        response_headers["x-amz-checksum-type"] = key.checksum_type or "FULL_OBJECT"
    return status, response_headers, body


_stock_delete_object = S3Response.delete_object


def delete_object(self: S3Response) -> Any:
    # AWS evaluates If-Match against the current version, even with a VersionId, as moto
    # does; moto only misreads "*", which means "the current version exists".
    if_match = self.headers.get("If-Match")
    if if_match and "*" in [v.strip() for v in if_match.split(",")]:
        current = self.backend.get_object(self.bucket_name, self.parse_key_name())
        if current is not None:
            headers = Headers(self.headers)
            headers["If-Match"] = current.etag
            self.headers = headers
    return _stock_delete_object(self)


# ======================================================================================
# 10. PutObjectLegalHold on a missing version
# ======================================================================================

_stock_put_object_legal_hold = S3Backend.put_object_legal_hold


def put_object_legal_hold(
    self: S3Backend, bucket_name: str, key_name: str, version_id: str | None, legal_hold_status: Any
) -> None:
    if self.get_object(bucket_name, key_name, version_id=version_id) is None:
        if version_id:
            raise MissingVersion(key=key_name, version_id=version_id)
        raise MissingKey(key=key_name)
    _stock_put_object_legal_hold(self, bucket_name, key_name, version_id, legal_hold_status)


# ======================================================================================
# 8. PutObject checksums and aws-chunked bodies
# ======================================================================================

CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class S3Error(S3ClientError):
    """An S3 error with its code and message (the HTTP status comes from moto's S3 model,
    400 for codes it does not know)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def compute_checksum(data: bytes, algorithm: str) -> str | None:
    """The base64 checksum of `data`, or None if this algorithm cannot be computed here."""
    if algorithm == "SHA256":
        digest = hashlib.sha256(data).digest()
    elif algorithm == "SHA1":
        digest = hashlib.sha1(data).digest()
    elif algorithm == "CRC32":
        digest = binascii.crc32(data).to_bytes(4, "big")
    elif algorithm in ("CRC32C", "CRC64NVME"):
        try:
            from awscrt import checksums
        except ImportError:
            return None
        if algorithm == "CRC32C":
            digest = checksums.crc32c(data).to_bytes(4, "big")
        else:
            digest = checksums.crc64nvme(data).to_bytes(8, "big")
    else:
        return None
    return base64.b64encode(digest).decode()


def verify_checksum(data: bytes, algorithm: str, value: str) -> None:
    expected = compute_checksum(data, algorithm)
    if expected is not None and expected != value:
        raise S3Error(
            "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
        )


def verified_checksum(headers: Any, trailers: dict[str, str], body: bytes) -> tuple[str, str | None]:
    """(ALGORITHM, value) of the checksum a PutObject or UploadPart carries (computed when only
    x-amz-sdk-checksum-algorithm names one), checked against `body` as AWS checks it."""
    algorithm, value = request_checksum(headers, trailers)
    if algorithm and value is None:
        value = compute_checksum(body, algorithm)
    if algorithm and value is not None:
        try:
            if len(base64.b64decode(value, validate=True)) == 0:
                raise ValueError
        except (binascii.Error, ValueError):
            raise S3Error(
                "InvalidRequest", f"Value for x-amz-checksum-{algorithm.lower()} header is invalid."
            ) from None
        verify_checksum(body, algorithm, value)
    return algorithm, value


def is_aws_chunked(headers: Any) -> bool:
    encodings = [e.strip().lower() for e in (headers.get("Content-Encoding") or "").split(",")]
    return "aws-chunked" in encodings or (headers.get("x-amz-content-sha256") or "").startswith(
        "STREAMING-"
    )


def decode_aws_chunked(raw: bytes) -> tuple[bytes, dict[str, str]]:
    """An aws-chunked body: `hex-size[;chunk-signature=...]\\r\\n data \\r\\n` ... then a
    zero-size chunk, then optional `name:value\\r\\n` trailers and a final `\\r\\n`.
    Returns the decoded data and the trailers (names in lower case)."""
    data = bytearray()
    pos = 0
    try:
        while True:
            eol = raw.index(b"\r\n", pos)
            size = int(raw[pos:eol].split(b";", 1)[0].strip(), 16)
            pos = eol + 2
            if size == 0:
                break
            if len(raw) < pos + size + 2 or raw[pos + size : pos + size + 2] != b"\r\n":
                raise ValueError("truncated chunk")
            data += raw[pos : pos + size]
            pos += size + 2
    except ValueError as e:
        raise S3Error("IncompleteBody", "The request body terminated unexpectedly") from e
    trailers: dict[str, str] = {}
    for line in raw[pos:].split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            trailers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return bytes(data), trailers


def request_checksum(headers: Any, trailers: dict[str, str]) -> tuple[str, str | None]:
    """(ALGORITHM, value) of the checksum a PutObject carries, in a header or a trailer.

    The value is None when only x-amz-sdk-checksum-algorithm names one (AWS then computes it).
    """
    found = []
    for algorithm in CHECKSUM_ALGORITHMS:
        name = f"x-amz-checksum-{algorithm.lower()}"
        value = headers.get(name)
        if value is None:
            declared = [t.strip().lower() for t in (headers.get("x-amz-trailer") or "").split(",")]
            if name in declared:
                value = trailers.get(name)
                if value is None:
                    raise S3Error(
                        "MalformedTrailerError",
                        "The request contained trailing data that was not well-formed "
                        "or did not conform to our published schema.",
                    )
        if value is not None:
            found.append((algorithm, value.strip()))
    if len(found) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    if found:
        return found[0]
    return (headers.get("x-amz-sdk-checksum-algorithm") or "").upper(), None


_stock_put_object = S3Response.put_object


def put_object(self: S3Response) -> Any:
    body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
    trailers: dict[str, str] = {}
    if is_aws_chunked(self.headers):
        body, trailers = decode_aws_chunked(self.raw_body)
        declared = self.headers.get("x-amz-decoded-content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) != len(body):
            raise S3Error(
                "IncompleteBody",
                "You did not provide the number of bytes specified by the "
                "x-amz-decoded-content-length HTTP header",
            )
        self.body = body  # what moto stores

    algorithm, value = verified_checksum(self.headers, trailers, body)

    def checksum_for_moto(response_headers: dict[str, Any]) -> tuple[str, str | None]:
        # Replaces moto's S3Response._get_checksum for this request.
        if algorithm and value is not None:
            response_headers[f"x-amz-checksum-{algorithm.lower()}"] = value
            response_headers["x-amz-checksum-type"] = "FULL_OBJECT"
            return algorithm, value
        return "", None

    self._get_checksum = checksum_for_moto
    response = _stock_put_object(self)
    if algorithm and value is not None:
        # Under the global lock, the current version is the one just written.
        stored = self.backend.get_object(self.bucket_name, self.parse_key_name())
        if stored is not None:
            stored.checksum_type = "FULL_OBJECT"
    return response


# ======================================================================================
# 9. POST object with a SigV4 POST policy
# ======================================================================================

# Access key id -> secret access key, for verifying POST policy signatures.
POST_CREDENTIALS = {"local": "local", "testing": "testing"}

# Fields a POST policy need not name.
POLICY_EXEMPT_FIELDS = {"x-amz-signature", "file", "policy"}
# Fields on which a POST policy may use starts-with (the others take exact matches only).
STARTS_WITH_FIELDS = {
    "key",
    "acl",
    "cache-control",
    "content-type",
    "content-disposition",
    "content-encoding",
    "expires",
    "success_action_redirect",
    "redirect",
}
SIGV4_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")


def access_denied(message: str) -> S3Error:
    return S3Error("AccessDenied", message)


def invalid_policy(message: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {message}")


def _missing_field(name: str) -> S3Error:
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  "
        "If it is specified, please check the order of the fields.",
    )


def _hmac(key: bytes, data: str) -> bytes:
    return hmac.new(key, data.encode(), hashlib.sha256).digest()


def sigv4_policy_signature(
    secret: str, date: str, region: str, service: str, policy_b64: str
) -> str:
    """The hex HMAC-SHA256 of the base64 policy under the SigV4 signing key of the scope."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    key = _hmac(key, "aws4_request")
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def verify_post_signature(fields: dict[str, str]) -> None:
    if "x-amz-signature" not in fields and ("signature" in fields or "awsaccesskeyid" in fields):
        raise access_denied("Access Denied")  # SigV2 forms: not supported here
    for name in SIGV4_FIELDS:
        if name not in fields:
            raise _missing_field("-".join(p.capitalize() for p in name.split("-")))
    if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
        raise S3Error(
            "InvalidArgument", f"Unsupported x-amz-algorithm: {fields['x-amz-algorithm']}"
        )
    parts = fields["x-amz-credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise S3Error(
            "InvalidArgument",
            'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; '
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    access_key, date, region, service, _ = parts
    secret = POST_CREDENTIALS.get(access_key)
    if secret is None and len(access_key) == 12 and access_key.isdigit():
        secret = "local"
    if secret is None:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    expected = sigv4_policy_signature(secret, date, region, service, fields["policy"])
    if not hmac.compare_digest(expected, fields["x-amz-signature"].strip().lower()):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )


def _parse_expiration(text: Any) -> datetime.datetime:
    if isinstance(text, str):
        for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
            try:
                return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                pass
    raise invalid_policy(f"Invalid 'expiration' value: '{text}'")


def check_post_policy(
    policy_b64: str, fields: dict[str, str], field_order: list[str], bucket: str, size: int
) -> None:
    """Raises what AWS answers when the form breaks its policy; `fields` has lower-case names
    and `key` already expanded, `size` is the file's size."""
    try:
        document = json.loads(base64.b64decode(policy_b64, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise invalid_policy("Invalid JSON.")
    if "expiration" not in document:
        raise invalid_policy("Policy missing expiration.")
    if "conditions" not in document or not isinstance(document["conditions"], list):
        raise invalid_policy("Policy missing conditions.")
    if _parse_expiration(document["expiration"]) < datetime.datetime.now(datetime.timezone.utc):
        raise access_denied("Invalid according to Policy: Policy expired.")

    covered: set[str] = set()
    size_ranges: list[tuple[int, int]] = []
    for condition in document["conditions"]:
        failed = access_denied(
            "Invalid according to Policy: Policy Condition failed: "
            + json.dumps(condition, separators=(", ", ": "))
        )
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise invalid_policy(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one "
                    "property specified."
                )
            ((name, expected),) = condition.items()
            operator = "eq"
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                low, high = condition[1], condition[2]
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
                    raise failed
                size_ranges.append((low, high))
                continue
            if operator not in ("eq", "starts-with") or not str(condition[1]).startswith("$"):
                raise failed
            name, expected = condition[1][1:], condition[2]
        else:
            raise failed
        name = str(name).lower()
        covered.add(name)
        actual = bucket if name == "bucket" else fields.get(name)
        if actual is None or not isinstance(expected, str):
            raise failed  # a condition on a field the form lacks fails
        if operator == "eq":
            ok = actual == expected
        elif name in STARTS_WITH_FIELDS or name.startswith("x-amz-meta-"):
            # A Content-Type with commas is a list: every member must match.
            values = actual.split(",") if name == "content-type" else [actual]
            ok = all(v.strip().startswith(expected) for v in values)
        else:
            ok = False  # starts-with is not allowed on this field
        if not ok:
            raise failed

    # Every input needs a condition: the bucket (from the URL) and each form field but
    # x-amz-signature, file, policy and x-ignore-*.
    for name in ["bucket", *field_order]:
        if name in POLICY_EXEMPT_FIELDS or name.startswith("x-ignore-") or name in covered:
            continue
        raise access_denied(f"Invalid according to Policy: Extra input fields: {name}")

    for low, high in size_ranges:
        if size < low:
            raise S3Error(
                "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
            )
        if size > high:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")


_stock_bucket_response_post = S3Response._bucket_response_post


def bucket_response_post(self: S3Response, request: Any, bucket_name: str) -> Any:
    """S3Response._bucket_response_post for form uploads (DeleteObjects passes through).

    Checks in this order: the bucket, the form's shape (a file, a key, a policy), the
    signature, the policy (expiration, conditions, extra fields, size), the checksum field;
    then moto stores the object and this answers as S3 does.
    """
    # DeleteObjects (POST /?delete): moto's path is not set yet here, so its own
    # is_delete_keys() may not see the query; the request's arguments do.
    if not request.headers.get("Content-Length") or self.is_delete_keys() or "delete" in request.args:
        return _stock_bucket_response_post(self, request, bucket_name)
    self.backend.get_bucket(bucket_name)  # NoSuchBucket comes first

    # The form's fields, by lower-case name, in order (the file is not one of them).
    field_order: list[str] = []
    fields: dict[str, str] = {}
    for name, value in request.form.items(multi=True):
        lower = name.lower()
        if lower == "file":
            continue
        if lower not in fields:
            field_order.append(lower)
        fields[lower] = value
    upload = request.files.get("file")
    if upload is None and "file" not in request.form:
        raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.")
    data = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()

    if "key" not in fields:
        raise _missing_field("key")
    filename = os.path.basename(upload.filename or "") if upload is not None else ""
    key_name = fields["key"].replace("${filename}", filename)
    fields["key"] = key_name
    self.querystring["key"] = [key_name]  # what moto reads, whatever the field's case

    if "policy" not in fields:
        # An anonymous upload: only a publicly writable bucket takes it.
        raise access_denied("Access Denied")
    verify_post_signature(fields)
    check_post_policy(fields["policy"], fields, field_order, bucket_name, len(data))

    checksum = None
    for algorithm in CHECKSUM_ALGORITHMS:
        value = fields.get(f"x-amz-checksum-{algorithm.lower()}")
        if value is not None:
            verify_checksum(data, algorithm, value.strip())
            checksum = (algorithm, value.strip())

    _stock_bucket_response_post(self, request, bucket_name)  # stores the object
    stored = self.backend.get_object(bucket_name, key_name)  # the version just written
    if stored is None:
        raise S3Error("InternalError", "The upload was not stored")
    if checksum is not None:
        stored.checksum_algorithm, stored.checksum_value = checksum
        stored.checksum_type = "FULL_OBJECT"

    host = request.headers.get("Host", "localhost")
    location = f"{request.scheme}://{host}/{quote(bucket_name)}/{quote(key_name, safe='/')}"
    headers = {"ETag": stored.etag, "Location": location}
    if stored.version_id and stored.version_id != "null":
        headers["x-amz-version-id"] = stored.version_id

    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlparse(redirect).scheme in ("http", "https"):
        parts = urlparse(redirect)
        query = parse_qs(parts.query)
        query.update({"bucket": [bucket_name], "key": [key_name], "etag": [stored.etag]})
        headers["Location"] = parts._replace(query=urlencode(query, doseq=True)).geturl()
        return 303, headers, ""
    status = fields.get("success_action_status")
    if status == "201":
        headers["Content-Type"] = "application/xml"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Location>{xml_escape(location)}</Location>"
            f"<Bucket>{xml_escape(bucket_name)}</Bucket>"
            f"<Key>{xml_escape(key_name)}</Key>"
            f"<ETag>{xml_escape(stored.etag)}</ETag>"
            "</PostResponse>"
        )
        return 201, headers, body
    if status == "200":
        return 200, headers, ""
    return 204, headers, ""


# ======================================================================================
# Installation
# ======================================================================================


def _patch_accounts_by_access_key() -> None:
    import moto.iam.models as iam_models
    from moto.core.responses import BaseResponse

    issued = iam_models.get_account_id_from

    def get_account_id_from(access_key: str) -> str:
        if len(access_key) == 12 and access_key.isdigit():
            return access_key
        return issued(access_key)

    iam_models.get_account_id_from = get_account_id_from
    header_key = BaseResponse.get_access_key

    # moto reads only 20-character keys (AKIA...) from the Authorization header.
    signed_by_account = re.compile(r"Credential=(\d{12})/")

    def get_access_key(self: BaseResponse) -> str:
        if "Authorization" in self.headers:
            match = signed_by_account.search(self.headers["Authorization"])
            if match:
                return match.group(1)
        else:
            credential = self.querystring.get("X-Amz-Credential")
            if credential:
                return credential[0].split("/", 1)[0]
        return header_key(self)

    BaseResponse.get_access_key = get_access_key


# ======================================================================================
# 11. Multipart uploads: part checksums, NoSuchUpload, part order, ListParts paging
# ======================================================================================

_stock_upload_part = S3Response.upload_part
_stock_list_parts = S3Response.list_parts
_stock_complete_multipart_upload = S3Backend.complete_multipart_upload


def _multipart_or_404(backend: S3Backend, bucket_name: str, upload_id: str) -> Any:
    multipart = backend.get_bucket(bucket_name).multiparts.get(upload_id)
    if multipart is None:
        raise NoSuchUpload(upload_id=upload_id)
    return multipart


def upload_part(self: S3Response) -> Any:
    upload_id = self._get_param("uploadId")
    multipart = _multipart_or_404(self.backend, self.bucket_name, upload_id)
    body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
    trailers: dict[str, str] = {}
    if is_aws_chunked(self.headers):
        body, trailers = decode_aws_chunked(self.raw_body)
        self.body = body
    algorithm, value = verified_checksum(self.headers, trailers, body)

    def checksum_for_moto(response_headers: dict[str, Any]) -> tuple[str, str | None]:
        if algorithm and value is not None:
            response_headers[f"x-amz-checksum-{algorithm.lower()}"] = value
            return algorithm, value
        return "", None

    self._get_checksum = checksum_for_moto
    response = _stock_upload_part(self)
    part = multipart.parts.get(self._get_int_param("partNumber"))
    if part is not None:
        part.intake_checksum = (algorithm, value) if algorithm and value is not None else None
    return response


def multipart_list_parts(self: Any, part_number_marker: int, max_parts: int) -> Iterator[Any]:
    # By part number: the marker is the last number a page returned.
    for part_id in [p for p in self.partlist if p > int(part_number_marker)][:max_parts]:
        yield self.parts[part_id]


def is_truncated(self: S3Backend, bucket_name: str, multipart_id: str, next_part_number_marker: int) -> bool:
    multipart = _multipart_or_404(self, bucket_name, multipart_id)
    return any(p > int(next_part_number_marker) for p in multipart.partlist)


def list_parts(self: S3Response) -> Any:
    status, headers, body = _stock_list_parts(self)
    multipart = _multipart_or_404(self.backend, self.bucket_name, self._get_param("uploadId"))
    text = body.decode() if isinstance(body, bytes) else body
    document = minidom.parseString(text)
    # AWS's root element (moto's serializer names it ListPartsResponse, which strict SDKs refuse).
    document.documentElement.tagName = "ListPartsResult"
    for element in document.getElementsByTagName("Part"):
        number = int(element.getElementsByTagName("PartNumber")[0].firstChild.wholeText)
        part = multipart.parts.get(number)
        checksum = getattr(part, "intake_checksum", None)
        if checksum:
            tag = document.createElement(f"Checksum{checksum[0]}")
            tag.appendChild(document.createTextNode(checksum[1]))
            element.appendChild(tag)
    return status, headers, document.toxml()


def complete_multipart_body(self: S3Response, body: bytes) -> Iterator[tuple[int, str]]:
    prev = 0
    for p in minidom.parseString(body).getElementsByTagName("Part"):
        number = int(p.getElementsByTagName("PartNumber")[0].firstChild.wholeText)
        if number <= prev:
            raise InvalidPartOrder()
        prev = number
        yield number, p.getElementsByTagName("ETag")[0].firstChild.wholeText


def complete_multipart_upload(self: S3Backend, bucket_name: str, multipart_id: str, body: Any) -> Any:
    _multipart_or_404(self, bucket_name, multipart_id)
    return _stock_complete_multipart_upload(self, bucket_name, multipart_id, body)


# ======================================================================================
# 14. ListObjectVersions copies keys without their bytes
# ======================================================================================


def fake_key_deepcopy(self: FakeKey, memo: dict[int, Any]) -> FakeKey:
    """A view of the key for a listing: its own attributes, the key's bytes (see patch 14).

    moto deep-copies keys only in ListObjectVersions, to set `is_latest` on the copies, which
    sets an attribute of the copy's own: a shallow copy of the attributes is enough, and
    deep-copying every version's metadata, ACL and tags cost ~0.4 ms a key on each listing
    (0.2 s to list a bucket of 600 versions, several times a second while scans poll).
    """
    # Not FakeKey.__new__: moto's models keep every instance they make until a reset, and a
    # listing's copies must go when its answer is sent.
    clone = object.__new__(FakeKey)
    memo[id(self)] = clone
    clone.__dict__.update(self.__dict__)
    clone.__dict__["_intake_shares_bytes"] = True
    return clone


_stock_dispose = FakeKey.dispose

# Patch 16: a stored buffer that copies share counts its keys in this attribute (absent: one).
USERS = "_intake_users"


def fake_key_dispose(self: FakeKey, garbage: bool = False) -> None:
    if self.__dict__.get("_intake_shares_bytes"):
        self.disposed = True  # the bytes belong to the key it was copied from
        return
    if self.__dict__.get("disposed"):
        return  # closed already (dispose, then __del__)
    buffer = self.__dict__.get("_value_buffer")
    users = getattr(buffer, USERS, 1)
    if users > 1:
        setattr(buffer, USERS, users - 1)
        self.disposed = True  # another key still reads these bytes
        return
    _stock_dispose(self, garbage)


# ======================================================================================
# 15. Ranged GetObject reads only the range
# ======================================================================================

_window = threading.local()
_stock_value = FakeKey.value


class KeyBytes:
    """A key's stored bytes, read only as far as they are sliced (a ranged GET, patch 15)."""

    def __init__(self, key: FakeKey) -> None:
        self.key = key

    def __len__(self) -> int:
        return self.key.size

    def __getitem__(self, index: slice) -> bytes:
        start, stop, _ = index.indices(self.key.size)
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return self.key._value_buffer.read(max(0, stop - start))


def fake_key_value(self: FakeKey) -> Any:
    if getattr(_window, "lazy", False):
        return KeyBytes(self)
    return _stock_value.fget(self)


def fake_key_set_value(self: FakeKey, new_value: Any) -> None:
    if isinstance(new_value, KeyBytes):  # a copy (patch 16): share the source's bytes
        source = new_value.key._value_buffer
        own = self.__dict__.get("_value_buffer")
        if own is source:
            return
        # Only FakeKey.__init__ sets a value here, on the key's own new (empty) buffer; the
        # requests that get this far hold the launcher's global lock (patch 1), as every reader
        # of the shared bytes does.
        if own is not None and getattr(own, USERS, 1) == 1:
            own.close()
        setattr(source, USERS, getattr(source, USERS, 1) + 1)
        self._value_buffer = source
        self.contentsize = new_value.key.size
        return
    _stock_value.fset(self, new_value)


_stock_backend_copy_object = S3Backend.copy_object


def backend_copy_object(self: S3Backend, src_key: FakeKey, *args: Any, **kwargs: Any) -> Any:
    was = getattr(_window, "lazy", False)
    _window.lazy = True  # the source's value is handed over as its stored bytes
    try:
        return _stock_backend_copy_object(self, src_key, *args, **kwargs)
    finally:
        _window.lazy = was


_stock_get_object = S3Response.get_object


def get_object(self: S3Response) -> Any:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", (self.headers.get("range") or "").strip())
    if match is None or self._get_param("partNumber"):
        return _stock_get_object(self)
    was = getattr(_window, "lazy", False)
    _window.lazy = True
    try:
        response = _stock_get_object(self)
    finally:
        _window.lazy = was
    status, headers, body = response
    if isinstance(body, KeyBytes):
        begin, end = int(match.group(1)), match.group(2)
        # moto's range handling slices a satisfiable range and refuses one that starts past the
        # end (416); a range it answers whole (end before begin) gets the bytes.
        if status != 200 or (end and int(end) < begin):
            body = _stock_value.fget(body.key)
    return status, headers, body


def install() -> None:
    moto.server.DomainDispatcherApplication = SerializedDispatcher
    _patch_accounts_by_access_key()
    _patch_sqs_long_polling()
    _patch_sqs_fair_queues()
    _patch_sns_http_delivery()
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoHandler.transact_write_items = handler_transact_write_items
    StreamRecord.__init__ = stream_record_init
    S3Response.copy_object = copy_object
    S3Response.upload_part_copy = upload_part_copy
    S3Response.head_object = head_object
    S3Response.delete_object = delete_object
    S3Response.put_object = put_object
    S3Response._bucket_response_post = bucket_response_post
    S3Backend.put_object_legal_hold = put_object_legal_hold
    S3Response.upload_part = upload_part
    S3Response.list_parts = list_parts
    S3Response._complete_multipart_body = complete_multipart_body
    FakeMultipart.list_parts = multipart_list_parts
    S3Backend.is_truncated = is_truncated
    S3Backend.complete_multipart_upload = complete_multipart_upload
    FakeKey.__deepcopy__ = fake_key_deepcopy
    FakeKey.dispose = fake_key_dispose
    FakeKey.value = property(fake_key_value, fake_key_set_value)
    S3Backend.copy_object = backend_copy_object
    S3Response.get_object = get_object


def main(argv: list[str] | None = None) -> None:
    install()
    start_ttl_sweeper()
    moto.server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
