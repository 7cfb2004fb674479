"""A database that is away answers 503 with Retry-After (a retry will work), not a 500."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.platform.problems import dependency_unreachable, install_problem_handlers


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("while handling the request") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        _raised_from(ConnectionResetError(104, "Connection reset by peer")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unreachable_dependency_is_recognised_through_its_causes(exc: BaseException) -> None:
    assert dependency_unreachable(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bug"), IntegrityError("INSERT", {}, Exception("duplicate key")), KeyError("x"),
     asyncpg.exceptions.UniqueViolationError("duplicate key")],
    ids=lambda e: type(e).__name__,
)
def test_a_bug_or_a_constraint_is_not_an_outage(exc: BaseException) -> None:
    assert not dependency_unreachable(exc)


def test_the_answer_is_a_503_problem_with_retry_after_and_a_bug_stays_a_500() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/outage")
    async def outage() -> None:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("bug")

    client = TestClient(app, raise_server_exceptions=False)
    away = client.get("/outage")
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert away.headers["content-type"].startswith("application/problem+json")
    assert away.json()["code"] == "service_unavailable"
    assert client.get("/bug").status_code == 500
