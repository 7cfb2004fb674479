"""argon2id hashing off the event loop, never more hashes at once than cores."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP ASVS / OWASP cheat sheet minimum for argon2id: m=19 MiB, t=2, p=1.
ASVS_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class AsyncPasswordHasher:
    def __init__(self, hasher: PasswordHasher = ASVS_HASHER, workers: int = 0) -> None:
        self.hasher = hasher
        # argon2-cffi releases the GIL, so threads use every core.
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1, thread_name_prefix="argon2")
        # Verifying against this keeps an unknown identifier as slow as a known one.
        self.dummy_hash = hasher.hash("dummy password for timing only")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        await self.verify(self.dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self.pool.shutdown(wait=False)
