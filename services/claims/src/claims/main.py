"""claims: wiring. `uvicorn claims.main:app`"""

from importlib.resources import files

from claims.config import ClaimsSettings
from claims.entrypoints import http
from claims.entrypoints.consumers import build_consumer
from shared.platform.app import ServiceRuntime


def create_app():
    settings = ClaimsSettings()
    runtime = ServiceRuntime(settings, migrations=files("claims") / "migrations")
    runtime.consume(build_consumer())
    return runtime.create_app(
        title="Espace — claims",
        description="Guarantees, claims, reimbursements and the health professionals directory.",
        routers=[http.router],
    )


app = create_app()
