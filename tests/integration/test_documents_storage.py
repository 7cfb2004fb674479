"""documents' storage adapters against the real thing: the filesystem, and an S3-compatible server
(gofakes3, an S3 API implementation built from the Go module proxy by deploy/local/s3server.sh)
spoken to over HTTP by the S3 adapter's aiobotocore client. Both keep the same contract."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from documents.adapters.storage import CHUNK, FilesystemStorage, S3Storage
from tests.integration.system import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    binary = subprocess.run([str(ROOT / "deploy/local/s3server.sh"), "build"], check=True, capture_output=True,
                            text=True, timeout=900).stdout.strip()
    port = free_port()
    log = (tmp_path_factory.mktemp("s3") / "s3server.log").open("w")
    server = subprocess.Popen([binary, "-addr", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the S3 server did not start (see {log.name})") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture(params=["filesystem", "s3"])
def storage_factory(request, tmp_path):
    def make():
        if request.param == "filesystem":
            return FilesystemStorage(tmp_path / "store")
        endpoint = request.getfixturevalue("s3_endpoint")
        return S3Storage(endpoint_url=endpoint, bucket=f"espace-{os.urandom(4).hex()}", region="eu-west-3",
                         access_key="test-key", secret_key="test-secret", spool=tmp_path / "spool")

    return make


def test_a_stored_file_reads_back_in_chunks_moves_and_is_deleted(storage_factory, tmp_path):
    storage = storage_factory()
    upload = tmp_path / "spooled-upload"
    content = os.urandom(3 * CHUNK + 123)  # several chunks, the last one short
    upload.write_bytes(content)

    async def go():
        await storage.start()
        try:
            await storage.put_file("uploads/m1/a", upload, "application/pdf")
            assert not upload.exists()  # the spooled copy is the adapter's to remove
            chunks = [chunk async for chunk in storage.read("uploads/m1/a")]
            assert len(chunks) > 1 and max(len(c) for c in chunks) <= CHUNK
            assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(content).digest()
            async with storage.local_file("uploads/m1/a") as local:
                assert Path(local).read_bytes() == content
            if isinstance(storage, S3Storage):  # its local copy is temporary
                assert not Path(local).exists() and list(storage.spool.iterdir()) == []

            await storage.put_bytes("statements/m1/s.pdf", b"%PDF-1.7 statement", "application/pdf")
            assert await storage.read_all("statements/m1/s.pdf") == b"%PDF-1.7 statement"

            await storage.move("uploads/m1/a", "quarantine/m1/a")
            assert await storage.read_all("quarantine/m1/a") == content
            with pytest.raises(Exception):
                await storage.read_all("uploads/m1/a")

            await storage.delete("quarantine/m1/a")
            with pytest.raises(Exception):
                await storage.read_all("quarantine/m1/a")
            for bad in ("../etc/passwd", "uploads//a", "/abs", "Uploads/A"):
                with pytest.raises(ValueError):
                    await storage.put_bytes(bad, b"x", "text/plain")
        finally:
            await storage.stop()

    asyncio.run(go())


def test_the_s3_adapter_creates_its_bucket_once_and_finds_it_again(s3_endpoint, tmp_path):
    bucket = f"espace-{os.urandom(4).hex()}"

    def adapter():
        return S3Storage(endpoint_url=s3_endpoint, bucket=bucket, region="eu-west-3", access_key="test-key",
                         secret_key="test-secret", spool=tmp_path / "spool")

    async def go():
        first = adapter()
        await first.start()
        await first.put_bytes("letters/m1/l.pdf", b"%PDF letter", "application/pdf")
        await first.stop()
        again = adapter()  # a restarted service: the bucket and what it holds are still there
        await again.start()
        try:
            return await again.read_all("letters/m1/l.pdf")
        finally:
            await again.stop()

    assert asyncio.run(go()) == b"%PDF letter"
