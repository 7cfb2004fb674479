"""identity: wiring. `uvicorn identity.main:app`"""

from importlib.resources import files

from identity.adapters.password_hasher import AsyncPasswordHasher
from identity.adapters.signing import KeyRing
from identity.config import IdentitySettings
from identity.entrypoints import http
from identity.service_layer.accounts import Identity
from shared.platform.app import ServiceRuntime


def create_app():
    settings = IdentitySettings()
    keys = KeyRing.load(settings.jwt_private_key_files)
    runtime = ServiceRuntime(settings, migrations=files("identity") / "migrations", key_source=keys)
    hasher = AsyncPasswordHasher(workers=settings.password_hash_workers)
    identity = Identity(settings=settings, db=runtime.db, hasher=hasher, keys=keys)

    @runtime.on_shutdown
    async def _close_hasher() -> None:
        hasher.close()

    app = runtime.create_app(
        title="Espace — identity",
        description="Member registry, online accounts, activation and log-in.",
        routers=[http.router],
    )
    app.state.identity = identity
    return app


app = create_app()
