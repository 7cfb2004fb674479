"""identity: wiring. `uvicorn identity.main:app`"""

import asyncio
from importlib.resources import files

from identity.adapters.password_hasher import AsyncPasswordHasher
from identity.adapters.signing import KeyRing
from identity.config import IdentitySettings
from identity.entrypoints import http, http_agents, http_profile, http_sessions
from identity.service_layer import sessions
from identity.service_layer.accounts import Identity
from shared.platform.app import ServiceRuntime
from shared.platform.db import DirectPool


def create_app():
    settings = IdentitySettings()
    keys = KeyRing.load(settings.jwt_private_key_files)
    runtime = ServiceRuntime(settings, migrations=files("identity") / "migrations", key_source=keys)
    hasher = AsyncPasswordHasher(workers=settings.password_hash_workers)
    direct = DirectPool(settings.database_url.get_secret_value(), settings.direct_pool_size)
    runtime.on_startup(direct.open)
    runtime.on_shutdown(direct.close)
    identity = Identity(settings=settings, db=runtime.db, direct=direct, hasher=hasher, keys=keys)

    @runtime.on_shutdown
    async def _close_hasher() -> None:
        hasher.close()

    housekeeping: list[asyncio.Task] = []

    @runtime.on_startup
    async def _start_housekeeping() -> None:
        # Expired sessions, throttle rows and reset links, purged hourly.
        housekeeping.append(asyncio.create_task(sessions.housekeeping_loop(identity), name="identity-housekeeping"))

    @runtime.on_shutdown
    async def _stop_housekeeping() -> None:
        for task in housekeeping:
            task.cancel()
        await asyncio.gather(*housekeeping, return_exceptions=True)

    app = runtime.create_app(
        title="Espace — identity",
        description="Member registry, online accounts, activation and log-in.",
        routers=[http.router, http_sessions.router, http_profile.router, http_agents.router],
    )
    app.state.identity = identity
    _document_terms_version(app, settings.terms_version)
    return app


def _document_terms_version(app, version: str) -> None:
    """The terms acceptance takes only the version in force: the document says which."""
    generate = app.openapi

    def openapi():
        document = generate()
        field = document["components"]["schemas"]["TermsAcceptanceRequest"]["properties"]["version"]
        field["enum"] = [version]
        return document

    app.openapi = openapi


app = create_app()
