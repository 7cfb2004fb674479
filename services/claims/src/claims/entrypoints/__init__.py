"""claims's entrypoints: HTTP routes (member, back office, directory), consumers, command line."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from claims.service_layer.providers_search import NameMatches


async def read_pool(request: Request) -> asyncpg.Pool:
    """The hot read paths' asyncpg pool (shared.platform.db.DirectPool, opened with the app)."""
    return request.app.state.reads.pool


PoolDep = Annotated[asyncpg.Pool, Depends(read_pool)]


async def name_matches(request: Request) -> NameMatches | None:
    """The directory's names remembered per word (service_layer.providers_search.NameMatches);
    None when CLAIMS_DIRECTORY_NAME_CACHE_WORDS=0."""
    return request.app.state.name_matches


NamesDep = Annotated[NameMatches | None, Depends(name_matches)]
