"""documents: wiring. `uvicorn documents.main:app`"""

import asyncio
from importlib.resources import files

from documents.adapters.antivirus import ClamdScanner
from documents.adapters.pdf import PdfRenderer
from documents.adapters.storage import build_storage
from documents.config import DocumentsSettings
from documents.entrypoints import http, http_backoffice, http_messages
from documents.entrypoints.consumers import build_consumer
from documents.service_layer import cards, rendering, scanning
from documents.service_layer.context import Documents
from shared.platform.app import ServiceRuntime


def create_app():
    settings = DocumentsSettings()
    runtime = ServiceRuntime(settings, migrations=files("documents") / "migrations")
    docs = Documents(
        settings=settings,
        db=runtime.db,
        storage=build_storage(settings),
        renderer=PdfRenderer(settings.render_workers, nice=settings.render_nice),
        scanner=ClamdScanner(settings.clamd_host, settings.clamd_port, settings.clamd_timeout_s),
    )
    runtime.consume(build_consumer(docs), before_commit=cards.reissue_queued(docs), after_commit=docs.render_wake.set)
    background: list[asyncio.Task] = []

    @runtime.on_startup
    async def _start() -> None:
        await docs.storage.start()
        settings.spool.mkdir(parents=True, exist_ok=True)
        background.append(asyncio.create_task(scanning.scan_loop(docs), name="documents-scanner"))
        background.append(asyncio.create_task(_render_after_warm_up(), name="documents-renderer"))

    async def _render_after_warm_up() -> None:
        await docs.renderer.warm_up()
        if settings.render_in_background:
            await rendering.render_loop(docs)

    @runtime.on_shutdown
    async def _stop() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        docs.renderer.close()
        await docs.storage.stop()

    app = runtime.create_app(
        title="Espace — documents",
        description="Invoice upload with antivirus, statements and letters as PDFs, download links, "
        "the tiers-payant card, messages to the management centre.",
        routers=[http.router, http_messages.router, http_backoffice.router, http_messages.backoffice, http.documents_router],
    )
    app.state.documents = docs
    return app


app = create_app()
