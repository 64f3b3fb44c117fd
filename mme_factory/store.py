"""The artifact store: an S3 bucket, or a local directory laid out with the bucket's exact keys."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mme_factory.aws_clients import s3_client
from mme_factory.errors import StoreError
from mme_factory.settings import Settings


class ArtifactStore(Protocol):
    """Keys are relative POSIX paths such as `registry/acme.json`."""

    def uri(self, key: str = "") -> str: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def list_keys(self, prefix: str = "") -> Iterator[str]: ...
    def put_file(self, key: str, path: Path, sha256: str) -> None: ...
    def stored_sha256(self, key: str) -> str: ...
    def create_exclusive(self, key: str, data: bytes) -> bool: ...
    def delete(self, key: str) -> None: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_key(key: str) -> str:
    """Refuse keys that could leave the store's root."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or "\\" in key or "\x00" in key:
        raise StoreError(f"invalid store key {key!r}: must be a relative path without '..'")
    return str(path)


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise StoreError(f"{self.uri(key)} does not exist") from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.uri(key)} does not exist") from None
        except OSError as error:
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith("."):
                yield key

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, partial)
        partial.replace(target)

    def stored_sha256(self, key: str) -> str:
        if not self.exists(key):
            raise StoreError(f"{self.uri(key)} does not exist")
        return file_sha256(self._path(key))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return True

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        key = checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        full = self._key(key) if key else self.prefix
        return f"s3://{self.bucket}/{full}"

    def _call(self, what: str, key: str, operation: Any, **kwargs: Any) -> Any:
        try:
            return operation(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise StoreError(f"{self.uri(key)} does not exist") from None
            if code == "NoSuchBucket":
                raise StoreError(f"bucket {self.bucket} does not exist") from None
            raise StoreError(f"cannot {what} {self.uri(key)}: {error}") from None
        except BotoCoreError as error:
            raise StoreError(f"cannot {what} {self.uri(key)}: {error}") from None

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except StoreError as error:
            if "does not exist" in str(error):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        head = self._call("inspect", key, self.client.head_object, Key=self._key(key))
        return int(head["ContentLength"])

    def read_bytes(self, key: str) -> bytes:
        response = self._call("read", key, self.client.get_object, Key=self._key(key))
        return response["Body"].read()

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
            raise StoreError(f"cannot list {self.uri(prefix)}: {error}") from None

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        """boto3's managed transfer: multipart above 8 MB; the sha256 rides in the metadata."""
        try:
            self.client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs={"Metadata": {"sha256": sha256}}
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"cannot upload {path} to {self.uri(key)}: {error}") from None

    def stored_sha256(self, key: str) -> str:
        head = self._call("inspect", key, self.client.head_object, Key=self._key(key))
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded:
            return recorded
        return hashlib.sha256(self.read_bytes(key)).hexdigest()

    def create_exclusive(self, key: str, data: bytes) -> bool:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise StoreError(f"cannot create {self.uri(key)}: {error}") from None
        return True

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Key=self._key(key))


def open_store(uri: str, settings: Settings) -> ArtifactStore:
    """A store rooted at `uri`: `s3://bucket[/prefix]` or a local directory."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StoreError(f"invalid S3 URI {uri!r}: no bucket")
        return S3Store(s3_client(settings), bucket, prefix)
    if "://" in uri:
        raise StoreError(f"unsupported location {uri!r}: use s3://bucket/prefix or a local path")
    return LocalStore(Path(uri))
