"""claims's entrypoints: HTTP routes (member, back office, directory), consumers, command line."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request


async def read_pool(request: Request) -> asyncpg.Pool:
    """The hot read paths' asyncpg pool (adapters.pg.ReadPool, opened with the app)."""
    return request.app.state.reads.pool


PoolDep = Annotated[asyncpg.Pool, Depends(read_pool)]
