"""Where files live, behind one small interface: the filesystem (make run, tests) or an
S3-compatible bucket (production). Keys are server-side names ('uploads/<member>/<uuid>'),
never anything the member chose."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Protocol

CHUNK = 256 * 1024
_KEY = re.compile(r"^[a-z0-9][a-z0-9/_.\-]*$")


def _check(key: str) -> str:
    if not _KEY.match(key) or ".." in key or "//" in key:
        raise ValueError("invalid storage key")
    return key


class Storage(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def put_file(self, key: str, path: Path, media_type: str) -> None:
        """Store the file at `path` (the caller's spooled copy; it may be moved away)."""
    async def put_bytes(self, key: str, data: bytes, media_type: str) -> None: ...
    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks (never the whole file at once)."""
    async def read_all(self, key: str) -> bytes: ...
    def local_file(self, key: str):  # -> AbstractAsyncContextManager[Path]
        """A local path holding the object for the time of the `async with`."""
    async def move(self, source: str, target: str) -> None: ...
    async def delete(self, key: str) -> None: ...


class FilesystemStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / _check(key)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        return None

    async def put_file(self, key: str, path: Path, media_type: str) -> None:
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)

        await asyncio.to_thread(move)

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> None:
        target = self._path(key)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)

        await asyncio.to_thread(write)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def read_all(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        yield self._path(key)

    async def move(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)

        def move() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)

        await asyncio.to_thread(move)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


class S3Storage:
    """Any S3-compatible service (AWS, MinIO, SeaweedFS, Scaleway...) through aiobotocore."""

    def __init__(self, *, endpoint_url: str | None, bucket: str, region: str, access_key: str, secret_key: str,
                 spool: Path) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self.spool = spool
        self._stack: AsyncExitStack | None = None
        self._client = None

    async def start(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self._stack = AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self._access_key or None,
                aws_secret_access_key=self._secret_key or None,
                config=AioConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
            )
        )
        self.spool.mkdir(parents=True, exist_ok=True)
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except Exception:
            await self._client.create_bucket(Bucket=self.bucket)

    async def stop(self) -> None:
        if self._stack:
            await self._stack.aclose()

    async def put_file(self, key: str, path: Path, media_type: str) -> None:
        # botocore reads the file object itself, in chunks.
        with path.open("rb") as handle:
            await self._client.put_object(Bucket=self.bucket, Key=_check(key), Body=handle, ContentType=media_type)
        path.unlink(missing_ok=True)

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> None:
        await self._client.put_object(Bucket=self.bucket, Key=_check(key), Body=data, ContentType=media_type)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        response = await self._client.get_object(Bucket=self.bucket, Key=_check(key))
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk

    async def read_all(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        fd, name = tempfile.mkstemp(dir=self.spool, prefix="s3-")
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in self.read(key):
                    handle.write(chunk)
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    async def move(self, source: str, target: str) -> None:
        await self._client.copy_object(
            Bucket=self.bucket, Key=_check(target), CopySource={"Bucket": self.bucket, "Key": _check(source)}
        )
        await self._client.delete_object(Bucket=self.bucket, Key=_check(source))

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=_check(key))


def build_storage(settings) -> Storage:
    if settings.storage == "s3":
        return S3Storage(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key_id.get_secret_value(),
            secret_key=settings.s3_secret_access_key.get_secret_value(),
            spool=settings.spool,
        )
    return FilesystemStorage(settings.storage_dir)
