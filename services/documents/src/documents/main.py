"""documents: wiring. `uvicorn documents.main:app`"""

from importlib.resources import files

from documents.config import DocumentsSettings
from documents.entrypoints import http
from documents.entrypoints.consumers import build_consumer
from shared.platform.app import ServiceRuntime


def create_app():
    settings = DocumentsSettings()
    runtime = ServiceRuntime(settings, migrations=files("documents") / "migrations")
    runtime.consume(build_consumer())
    return runtime.create_app(
        title="Espace — documents",
        description="Stored files, letters, messages and the third-party-payment card.",
        routers=[http.router],
    )


app = create_app()
