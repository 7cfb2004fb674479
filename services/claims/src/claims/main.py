"""claims: wiring. `uvicorn claims.main:app`"""

from importlib.resources import files

from claims.adapters.pg import ReadPool
from claims.config import ClaimsSettings
from claims.domain.plans import PlanCatalog
from claims.entrypoints import http, http_backoffice, http_providers
from claims.entrypoints.consumers import build_consumer
from shared.platform.app import ServiceRuntime


def create_app():
    settings = ClaimsSettings()
    catalog = PlanCatalog.load()  # a bad plan file stops the start, with its line and reason
    runtime = ServiceRuntime(settings, migrations=files("claims") / "migrations")
    runtime.consume(build_consumer())
    reads = ReadPool(settings.database_url.get_secret_value())
    runtime.on_startup(reads.open)
    runtime.on_shutdown(reads.close)
    app = runtime.create_app(
        title="Espace — claims",
        description="Guarantees, claims, reimbursements and the health professionals directory.",
        routers=[http.router, http_backoffice.router, http_providers.router],
    )
    app.state.catalog = catalog
    app.state.reads = reads
    return app


app = create_app()
