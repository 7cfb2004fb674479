"""Async database access (SQLModel over asyncpg; asyncpg alone on hot paths) and the migrations
applied at start."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from importlib.resources.abc import Traversable

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

PLATFORM_MIGRATIONS = files("shared.platform") / "migrations"


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants a plain postgresql:// URL, SQLAlchemy the +asyncpg dialect."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return url


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released connection needs beyond asyncpg's own ROLLBACK of a transaction left open
    (a cancelled request): nothing, since the statements run on a DirectPool leave the session as
    they found it (settings are SET LOCAL, no LISTEN, no advisory lock, no cursor outside a
    transaction). asyncpg's default reset (`RESET ALL; CLOSE ALL; UNLISTEN *;
    pg_advisory_unlock_all()`) was one more round trip per request, and PostgreSQL work, for nothing."""


class DirectPool:
    """A hot path's own asyncpg pool (claims' directory searches and a member's lines, identity's
    log-in and account view): statements prepared once per connection, without an ORM session and
    its BEGIN, ROLLBACK and liveness ping around each request, nor a session reset after it
    (`_keep_session`: only for statements that leave the session as they found it)."""

    def __init__(self, url: str, size: int = 8) -> None:
        self.dsn, self.size = asyncpg_dsn(url), size
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.size, reset=_keep_session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One unit of work on one connection: everything inside commits together or not at all."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under an ORM session's transaction: raw statements on it commit
    with the rest."""
    sa_connection = await session.connection()
    raw = await sa_connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = sqlalchemy_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: everything inside commits together or not at all."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # readiness reports, it does not raise
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


async def apply_migrations(url: str, *sources: tuple[str, Traversable]) -> list[str]:
    """Apply `NNNN_name.sql` files in order, once each, under an advisory lock.

    Several replicas may start at once: the lock makes one apply and the others wait and then
    find nothing to do. Each file runs in its own transaction with its bookkeeping row.
    """
    applied: list[str] = []
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("SELECT pg_advisory_lock(727274)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["id"] for r in await conn.fetch("SELECT id FROM schema_migrations")}
        for namespace, folder in sources:
            scripts = sorted(
                (p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
            )
            for script in scripts:
                migration_id = f"{namespace}:{script.name}"
                if migration_id in done:
                    continue
                async with conn.transaction():
                    await conn.execute(script.read_text(encoding="utf-8"))
                    await conn.execute("INSERT INTO schema_migrations (id) VALUES ($1)", migration_id)
                log.info("migration applied", extra={"migration": migration_id})
                applied.append(migration_id)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock(727274)")
        finally:
            await conn.close()
    return applied
