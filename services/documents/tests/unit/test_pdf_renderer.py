"""The PDF worker processes: a real WeasyPrint render, at a lower CPU priority than the service."""

from __future__ import annotations

import asyncio
import os
from datetime import date

from documents.adapters.pdf import PdfRenderer, worker_niceness


LETTER = {"title": "Relevé", "reference": "R-1", "issued_on": date(2026, 12, 3), "recipient": {"name": "Zoé Martin"},
          "mutuelle": {"name": "Mutuelle Espace", "address": "12 rue de la Solidarité", "phone": "01", "registration": "-"}}


def test_a_letter_renders_in_a_worker_that_yields_the_cpu_to_the_service():
    async def go():
        renderer = PdfRenderer(workers=1, nice=10)
        try:
            return await renderer.run(worker_niceness), await renderer.render("base.html", LETTER)
        finally:
            renderer.close()

    niceness, pdf = asyncio.run(go())
    assert niceness == min(19, os.nice(0) + 10)
    assert pdf.data.startswith(b"%PDF") and pdf.pages >= 1


def test_nice_zero_keeps_the_services_priority():
    async def go():
        renderer = PdfRenderer(workers=1, nice=0)
        try:
            return await renderer.run(worker_niceness)
        finally:
            renderer.close()

    assert asyncio.run(go()) == os.nice(0)
