"""PDFs from Jinja2 HTML templates with WeasyPrint: PDF/A-3b (XMP claims the conformance) and
tagged (structure for screen readers). WeasyPrint is CPU-bound, so it runs in worker processes
and the event loop keeps serving while a statement renders. The workers run at a lower CPU
priority (`nice`): nothing waits on them inside a transaction any more (a member asking for a
file not rendered yet waits for one render), so requests and consumers go first."""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

PDF_VARIANT = "pdf/a-3b"


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    from documents.domain.money import euros

    env = Environment(loader=PackageLoader("documents", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["euros"] = euros
    env.filters["date_fr"] = lambda d: d.strftime("%d/%m/%Y") if d else ""
    return env


def render_html(template: str, context: dict[str, Any]) -> str:
    return _environment().get_template(template).render(**context)


def render_pdf_sync(template: str, context: dict[str, Any]) -> RenderedPdf:
    from weasyprint import HTML

    document = HTML(string=render_html(template, context)).render(pdf_tags=True)
    data = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_tags=True)
    return RenderedPdf(data=data, pages=len(document.pages))


def datamatrix_png(payload: str) -> bytes:
    from pystrich.datamatrix import DataMatrixEncoder

    return DataMatrixEncoder(payload).get_imagedata(cellsize=6)


def render_card_sync(template: str, context: dict[str, Any], payload: str) -> tuple[RenderedPdf, bytes]:
    """The card's PDF and its Data Matrix PNG (printed in the PDF too), both in the worker."""
    png = datamatrix_png(payload)
    pdf = render_pdf_sync(template, {**context, "datamatrix_src": "data:image/png;base64," + base64.b64encode(png).decode()})
    return pdf, png


_PR_SET_PDEATHSIG = 1


def _worker_start(increment: int, parent: int) -> None:
    """In each PDF worker: a lower CPU priority, and death with the service. A worker outlived a
    kill -9 of documents (`make chaos`, a supervisor's restart) as an orphan holding its memory;
    Linux's parent-death signal ends it with its parent."""
    if increment:
        os.nice(increment)
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans are possible, as before
        pass
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def _warm() -> None:
    from weasyprint import HTML

    HTML(string="<html lang=fr><body><p>é €</p></body></html>").write_pdf(pdf_variant=PDF_VARIANT, pdf_tags=True)


class PdfRenderer:
    def __init__(self, workers: int = 1, nice: int = 0) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process running an event loop and threads is unsafe.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_start, initargs=(self.nice, os.getpid()))
        return self._pool

    async def _run(self, fn, *args):
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool is unusable; the next render gets a
            # fresh one, this one is retried by its caller.
            if self._pool is pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise

    async def render(self, template: str, context: dict[str, Any]) -> RenderedPdf:
        return await self._run(render_pdf_sync, template, context)

    async def render_card(self, template: str, context: dict[str, Any], payload: str) -> tuple[RenderedPdf, bytes]:
        return await self._run(render_card_sync, template, context, payload)

    async def warm_up(self) -> None:
        """The first render in a fresh process loads Pango and scans the fonts (seconds): do it at
        start, not on the first member's statement."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor(), _warm)
        except Exception:  # a failure shows again, with its cause, on a real render
            pass

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
