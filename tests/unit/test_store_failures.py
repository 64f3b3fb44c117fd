"""S3 failures that are not API errors (the connection, the response stream) are StoreErrors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from mme_factory.errors import StoreError
from mme_factory.store import S3Store

FAILURES = [
    EndpointConnectionError(endpoint_url="http://s3.invalid"),
    ReadTimeoutError(endpoint_url="http://s3.invalid"),
    IncompleteReadError(actual_bytes=3, expected_bytes=10),
    ResponseStreamingError(error="connection reset by peer"),
]


class FailingBody:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def read(self) -> bytes:
        raise self.failure


class FailingClient:
    """Every call fails with `failure`, except GetObject, whose body fails while streaming."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def get_object(self, **request: Any) -> dict[str, Any]:
        return {"Body": FailingBody(self.failure), "ETag": '"e"', "LastModified": datetime.now(UTC)}

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise self.failure

        return call


OPERATIONS = {
    "read": lambda store: store.read_bytes("registry/acme.json"),
    "write": lambda store: store.write_bytes("registry/acme.json", b"{}"),
    "inspect": lambda store: store.size("registry/acme.json"),
    "create": lambda store: store.create_exclusive("registry/acme.json", b"{}"),
    "upload": lambda store: store.put_file("registry/acme.json", Path(__file__), "0" * 64),
}


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_s3_connection_and_stream_failures_are_store_errors_naming_operation_and_key(
    failure, operation
):
    store = S3Store(FailingClient(failure), "bucket")
    with pytest.raises(StoreError) as raised:
        OPERATIONS[operation](store)
    assert f"cannot {operation}" in str(raised.value)
    assert "s3://bucket/registry/acme.json" in str(raised.value)


class ConflictOnce:
    """PutObject answers 409 ConditionalRequestConflict once, as S3 does during a concurrent put."""

    def __init__(self) -> None:
        self.calls = 0

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            error = {"Code": "ConditionalRequestConflict", "Message": "try again"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 409}}, "Put")
        return {"ETag": '"created"'}


def test_a_conditional_request_conflict_is_retried_not_a_failure():
    client = ConflictOnce()
    assert S3Store(client, "bucket").create_exclusive("registry/acme.lock", b"{}")
    assert client.calls == 2
