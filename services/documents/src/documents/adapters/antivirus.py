"""clamd over TCP (INSTREAM) through aioclamd."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aioclamd


class ScannerUnavailable(Exception):
    """clamd did not answer: the file stays pending and is scanned when clamd is back."""


@dataclass(frozen=True)
class Verdict:
    status: str  # "clean", "infected", "error" (limits exceeded, unreadable: suspect, not clean)
    detail: str | None = None


class ClamdScanner:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.client = aioclamd.ClamdAsyncClient(host, port, timeout=timeout_s)

    async def ping(self) -> bool:
        try:
            return (await self.client.ping()) == "PONG"
        except Exception:
            return False

    async def scan(self, path: Path) -> Verdict:
        try:
            with path.open("rb") as handle:
                result = await self.client.instream(handle)
        except aioclamd.BufferTooLongError:
            return Verdict("error", "size limit exceeded")
        except (OSError, ConnectionError, asyncio.TimeoutError, aioclamd.ClamdConnectionError, aioclamd.ConnectionTimeoutError) as exc:
            raise ScannerUnavailable(type(exc).__name__) from exc
        except Exception as exc:  # aioclamd's own errors (a clamd that answers nonsense)
            raise ScannerUnavailable(type(exc).__name__) from exc
        if not result:
            raise ScannerUnavailable("empty answer")
        status, reason = next(iter(result.values()))
        if status == "OK":
            return Verdict("clean")
        if status == "FOUND":
            return Verdict("infected", reason)
        # "ERROR": e.g. a heuristic limit (AlertExceedsMax) or a parse failure: suspect.
        return Verdict("error", reason)
