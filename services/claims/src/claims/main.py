"""claims: wiring. `uvicorn claims.main:app`"""

from importlib.resources import files

from claims.config import ClaimsSettings
from claims.domain.plans import PlanCatalog
from claims.entrypoints import http, http_backoffice, http_providers
from claims.entrypoints.consumers import build_consumer
from claims.service_layer.providers_search import NameMatches
from shared.platform.app import ServiceRuntime
from shared.platform.db import DirectPool


def create_app():
    settings = ClaimsSettings()
    catalog = PlanCatalog.load()  # a bad plan file stops the start, with its line and reason
    runtime = ServiceRuntime(settings, migrations=files("claims") / "migrations")
    runtime.consume(build_consumer())
    reads = DirectPool(settings.database_url.get_secret_value(), settings.read_pool_size)
    runtime.on_startup(reads.open)
    runtime.on_shutdown(reads.close)
    app = runtime.create_app(
        title="Espace — claims",
        description="Guarantees, claims, reimbursements and the health professionals directory.",
        routers=[http.router, http_backoffice.router, http_providers.router],
    )
    app.state.catalog = catalog
    app.state.reads = reads
    app.state.name_matches = NameMatches(settings.directory_name_cache_words) if settings.directory_name_cache_words else None
    return app


app = create_app()
