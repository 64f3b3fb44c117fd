"""The S3 artifact store: every failure, from the API or from the connection, is a StoreError.

Conditional changes are S3's conditional requests: PutObject with If-None-Match (create) or
If-Match (replace), DeleteObject with If-Match. S3 answers 412 PreconditionFailed when another
writer changed the object first, and 409 ConditionalRequestConflict when a concurrent write of
the key was in flight: the request is repeated, as S3 asks.

botocore repeats a request whose answer was lost; when the first one landed, the repeat of a
conditional put is answered 412 although the object is the one just written. So every
conditional put carries a write id in the object's metadata, and a 412 is read as success when
the object holds that id.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mme_factory.errors import StoreError
from mme_factory.store_protocol import KeyMissing, StoreUnavailable, VersionedObject, checked_key

# Connection, timeout and streaming errors; the rest of BotoCoreError (bad parameters, no
# credentials) is a mistake to report, not to retry.
TRANSIENT_BOTOCORE = (BotoConnectionError, HTTPClientError, IncompleteReadError)
TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503"}
CONFLICT_RETRIES = 5
WRITE_ID = "write-id"  # user metadata: which conditional put wrote the object


class _PreconditionFailed(StoreError):
    pass


class _ConditionalConflict(StoreUnavailable):
    pass


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        # sha256 of objects written without it in their metadata, by key and ETag: such an
        # object is hashed once per version, not on every lookup.
        self._hashed: dict[str, tuple[str, str]] = {}

    def _key(self, key: str) -> str:
        key = checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        full = self._key(key) if key else self.prefix
        return f"s3://{self.bucket}/{full}"

    def _error(self, what: str, key: str, error: Exception) -> StoreError:
        where = self.uri(key)
        if isinstance(error, TRANSIENT_BOTOCORE):
            return StoreUnavailable(f"cannot {what} {where}: {error}")
        if not isinstance(error, ClientError):
            return StoreError(f"cannot {what} {where}: {error}")
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("404", "NoSuchKey", "NotFound"):
            return KeyMissing(f"{where} does not exist")
        if code == "NoSuchBucket":
            return StoreError(f"bucket {self.bucket} does not exist")
        if code in ("PreconditionFailed", "412"):
            return _PreconditionFailed(f"{where} changed before {what}")
        if code in ("ConditionalRequestConflict", "409"):
            return _ConditionalConflict(f"cannot {what} {where}: a concurrent write: {error}")
        if code in TRANSIENT_CODES or status >= 500:
            return StoreUnavailable(f"cannot {what} {where}: {error}")
        return StoreError(f"cannot {what} {where}: {error}")

    def _call(self, what: str, key: str, operation: Any, **kwargs: Any) -> Any:
        try:
            return operation(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise self._error(what, key, error) from None

    def _read_body(self, key: str, response: dict[str, Any]) -> bytes:
        """The body streams after the call returned: its failures are the read's too."""
        try:
            return response["Body"].read()
        except BotoCoreError as error:
            raise self._error("read", key, error) from None

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except KeyMissing:
            return False
        return True

    def size(self, key: str) -> int:
        head = self._call("inspect", key, self.client.head_object, Key=self._key(key))
        return int(head["ContentLength"])

    def read_bytes(self, key: str) -> bytes:
        response = self._call("read", key, self.client.get_object, Key=self._key(key))
        return self._read_body(key, response)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, self.client.put_object, Key=self._key(key), Body=data)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        base = f"{self.prefix}/" if self.prefix else ""
        pages = self._call("list", prefix, paginator.paginate, Prefix=base + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(base) :]
        except (ClientError, BotoCoreError) as error:
            raise self._error("list", prefix, error) from None

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        """boto3's managed transfer: multipart above 8 MB; the sha256 rides in the metadata."""
        try:
            self.client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs={"Metadata": {"sha256": sha256}}
            )
        except (ClientError, BotoCoreError) as error:
            raise self._error(f"upload {path} to", key, error) from None
        except S3UploadFailedError as error:
            # The managed transfer wraps the client's error; classify that one.
            cause = error.__context__
            wrapped = cause if isinstance(cause, ClientError | BotoCoreError) else error
            raise self._error(f"upload {path} to", key, wrapped) from None

    def stored_sha256(self, key: str) -> str:
        head = self._call("inspect", key, self.client.head_object, Key=self._key(key))
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded:
            return recorded
        cached = self._hashed.get(key)
        if cached is not None and cached[0] == head.get("ETag"):
            return cached[1]
        response = self._call("read", key, self.client.get_object, Key=self._key(key))
        digest = hashlib.sha256(self._read_body(key, response)).hexdigest()
        if response.get("ETag"):  # the ETag of the bytes just hashed
            self._hashed[key] = (str(response["ETag"]), digest)
        return digest

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Key=self._key(key))

    def read_versioned(self, key: str) -> VersionedObject | None:
        try:
            response = self._call("read", key, self.client.get_object, Key=self._key(key))
        except KeyMissing:
            return None
        data = self._read_body(key, response)
        return VersionedObject(data, response["ETag"], response["LastModified"].timestamp())

    def clock(self) -> float:
        """S3's time now, from the Date of its answer to a HEAD of the bucket."""
        answer = self._call("inspect", "", self.client.head_bucket)
        date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            raise StoreError(f"{self.uri()} answered without a Date header")
        return parsedate_to_datetime(date).timestamp()

    def _conditional(self, what: str, key: str, operation: Any, **kwargs: Any) -> Any | None:
        """The call's answer, or None when its condition failed (or the key is gone)."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._call(what, key, operation, Key=self._key(key), **kwargs)
            except (_PreconditionFailed, KeyMissing):
                return None
            except _ConditionalConflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        return None

    def _conditional_put(self, what: str, key: str, data: bytes, **condition: str) -> str | None:
        """The new ETag, or None when the condition failed on another writer's object."""
        write_id = uuid.uuid4().hex
        answer = self._conditional(
            what, key, self.client.put_object, Body=data, Metadata={WRITE_ID: write_id}, **condition
        )
        if answer is not None:
            return str(answer["ETag"])
        return self._etag_if_written_by(key, write_id)

    def _etag_if_written_by(self, key: str, write_id: str) -> str | None:
        try:
            head = self._call("inspect", key, self.client.head_object, Key=self._key(key))
        except KeyMissing:
            return None
        if head.get("Metadata", {}).get(WRITE_ID) == write_id:
            return str(head["ETag"])
        return None

    def create_exclusive(self, key: str, data: bytes) -> str | None:
        return self._conditional_put("create", key, data, IfNoneMatch="*")

    def replace_if(self, key: str, data: bytes, tag: str) -> str | None:
        return self._conditional_put("replace", key, data, IfMatch=tag)

    def delete_if(self, key: str, tag: str) -> bool:
        answer = self._conditional("delete", key, self.client.delete_object, IfMatch=tag)
        return answer is not None
