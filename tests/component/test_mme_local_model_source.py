"""An endpoint serves the bytes a key holds now: downloads are checked, overwritten keys reload."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mme_factory.model_archive import ArchiveLimits
from mme_factory.store import LocalStore, StoreUnavailable
from mme_local.aws_errors import AwsError
from mme_local.runtime import CachePolicy, EndpointRuntime
from mme_local.runtime.model_source import ModelSource
from mme_local.runtime.target_model import TargetModel
from test_support.fake_model_server import MIB, FakeModelServer
from test_support.mme_local_harness import RuntimeScenario, run_runtime_scenario
from test_support.mme_local_models import model_files, model_tarball, tarball

TARGET = TargetModel.parse("acme/classifier/v1.tar.gz")


class DamagingStore(LocalStore):
    """A store whose reads lose a byte, as a damaged transfer would."""

    def read_bytes(self, key: str) -> bytes:
        return super().read_bytes(key)[:-1]


def _run(tmp_path: Path, store: LocalStore, scenario: RuntimeScenario, wait_s: float = 5.0) -> None:
    policy = CachePolicy(1024 * MIB, wait_s, ArchiveLimits(10 * MIB, 100))
    run_runtime_scenario(store, FakeModelServer(), tmp_path / "models", policy, scenario)


def test_overwritten_target_model_is_reloaded_not_served_from_cache(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes(TARGET.key, model_tarball(factor=2.0))

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(TARGET, b"x", "a/b")
        await runtime.invoke(TARGET, b"x", "a/b")
        assert server.load_calls == [TARGET.triton_name]
        store.write_bytes(TARGET.key, model_tarball(factor=3.0))
        await runtime.invoke(TARGET, b"x", "a/b")
        assert server.load_calls == [TARGET.triton_name] * 2
        assert runtime.cache.get(TARGET.triton_name).sha256 == store.stored_sha256(TARGET.key)

    _run(tmp_path, store, scenario)


def test_overwritten_model_reloaded_over_budget_keeps_its_new_files(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes(TARGET.key, model_tarball(factor=2.0))

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(TARGET, b"x", "a/b")
        server.base_bytes = 2 * runtime.policy.budget_bytes  # over budget; only its copy cached
        store.write_bytes(TARGET.key, model_tarball(factor=3.0))
        with contextlib.suppress(AwsError):  # 429: still waiting for memory that never frees
            await runtime.invoke(TARGET, b"x", "a/b")
        for _ in range(50):
            if not runtime.loading(TARGET.triton_name):
                break
            await asyncio.sleep(0.1)
        status, _, _ = await runtime.invoke(TARGET, b"x", "a/b")
        assert status == 200 and server.load_calls == [TARGET.triton_name] * 2
        assert (runtime.models_dir / TARGET.triton_name / "model" / "doubler").is_dir()

    _run(tmp_path, store, scenario, wait_s=0.3)


def test_deleted_target_model_is_no_longer_served(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes(TARGET.key, model_tarball())

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(TARGET, b"x", "a/b")
        store.delete(TARGET.key)
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(TARGET, b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (424, "ModelError")
        assert caught.value.fields["OriginalStatusCode"] == 404

    _run(tmp_path, store, scenario)


class FlakyStore:
    """A remote store (not a local directory) that can stop answering."""

    def __init__(self, inner: LocalStore) -> None:
        self.inner, self.down = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stored_sha256(self, key: str) -> str:
        if self.down:
            raise StoreUnavailable(f"cannot inspect {key}: connection refused")
        return self.inner.stored_sha256(key)


def test_warm_model_is_not_served_while_the_store_cannot_say_what_its_key_holds(tmp_path):
    store = FlakyStore(LocalStore(tmp_path / "store"))
    store.inner.write_bytes(TARGET.key, model_tarball())

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(TARGET, b"x", "a/b")
        store.down = True
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(TARGET, b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (503, "ServiceUnavailable")
        store.down = False
        status, _, _ = await runtime.invoke(TARGET, b"x", "a/b")
        assert status == 200 and server.load_calls == [TARGET.triton_name]

    _run(tmp_path, store, scenario)  # type: ignore[arg-type]


def test_download_whose_sha256_differs_from_the_store_is_refused(tmp_path):
    store = DamagingStore(tmp_path / "store")
    store.write_bytes(TARGET.key, model_tarball())

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(TARGET, b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (424, "ModelError")
        assert "sha256" in caught.value.message
        assert server.load_calls == []
        assert not (runtime.models_dir / TARGET.triton_name).exists()

    _run(tmp_path, store, scenario)


def test_current_sha256_of_a_local_key_is_hashed_once_per_write(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    store.write_bytes(TARGET.key, b"first")
    source = ModelSource(store, 1024)
    hashed: list[str] = []
    stored_sha256 = store.stored_sha256

    def counted(key: str) -> str:
        hashed.append(key)
        return stored_sha256(key)

    monkeypatch.setattr(store, "stored_sha256", counted)
    first = source.current_sha256(TARGET.key)
    assert source.current_sha256(TARGET.key) == first and len(hashed) == 1
    store.write_bytes(TARGET.key, b"second")
    assert source.current_sha256(TARGET.key) != first and len(hashed) == 2


def _unreadable_tarballs() -> dict[str, bytes]:
    weights = {"doubler/1/weights.bin": os.urandom(65536)}
    xz = lzma.compress(gzip.decompress(tarball({**model_files(), **weights})))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("doubler/1/x")
        link.type, link.linkname = tarfile.SYMTYPE, "."
        tar.addfile(link)
    return {
        "corrupt xz": xz[: len(xz) // 2] + bytes(1024) + xz[len(xz) // 2 + 1024 :],
        "truncated gzip": model_tarball()[:-40],
        "not a tarball": b"<html>Access Denied</html>",
        "unsafe": buffer.getvalue(),
    }


@pytest.mark.parametrize("kind", list(_unreadable_tarballs()))
def test_unreadable_target_model_is_a_model_error_and_leaves_nothing(tmp_path, kind):
    store = LocalStore(tmp_path / "store")
    store.write_bytes(TARGET.key, _unreadable_tarballs()[kind])

    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for _ in range(2):
            with pytest.raises(AwsError) as caught:
                await runtime.invoke(TARGET, b"x", "a/b")
            assert (caught.value.status, caught.value.code) == (424, "ModelError")
            assert ("unsafe" in caught.value.message) == (kind == "unsafe")
            assert server.load_calls == []
            assert not runtime.models_dir.exists() or not any(runtime.models_dir.iterdir())

    _run(tmp_path, store, scenario)
