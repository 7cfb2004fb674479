"""The print batch: every document queued for post (members with e-courriers off), in print
order (postcode, then name, then date), as one PDF plus a CSV manifest under
var/print/<date>/; the batch's documents are then marked sent. A document is queued only once
its file is rendered and stored (service_layer/issuing.deliver): one still pending is not in
this batch but in the next one after its render."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from sqlmodel import select

from documents.adapters.tables import Document, Member
from documents.service_layer.context import Documents


@dataclass
class PrintBatch:
    pdf: Path | None
    manifest: Path | None
    printed: int
    held: int  # queued but with no postal address yet: they wait for one


def _address_line(address: dict) -> str:
    parts = [address.get("line1"), address.get("line2"), f"{address.get('postal_code', '')} {address.get('city', '')}".strip(),
             address.get("country") if address.get("country") not in (None, "FR") else None]
    return ", ".join(p for p in parts if p)


async def print_batch(docs: Documents, out_root: Path) -> PrintBatch:
    now = datetime.now(UTC)
    async with docs.db.transaction() as session:
        rows = list(await session.exec(
            select(Document, Member).join(Member, Member.member_id == Document.member_id)
            .where(Document.print_status == "queued").with_for_update(of=Document, skip_locked=True)
        ))
        printable = [(d, m) for d, m in rows if m.postal_address]
        held = len(rows) - len(printable)
        printable.sort(key=lambda dm: (dm[1].postal_address.get("postal_code", ""), dm[1].last_name or "",
                                       dm[1].first_name or "", dm[0].created_at))
        if not printable:
            return PrintBatch(None, None, 0, held)
        folder = out_root / f"{now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"batch-{now:%H%M%S}"
        writer = PdfWriter()
        manifest = io.StringIO()
        out = csv.writer(manifest)
        out.writerow(["sequence", "name", "address", "document_id", "document", "pages"])
        for sequence, (document, member) in enumerate(printable, 1):
            reader = PdfReader(io.BytesIO(await docs.storage.read_all(document.storage_key)))
            for page in reader.pages:
                writer.add_page(page)
            if len(reader.pages) % 2:
                writer.add_blank_page()  # recto-verso: each letter starts on a new sheet
            out.writerow([sequence, member.full_name, _address_line(member.postal_address), document.id,
                          document.title, len(reader.pages)])
            document.print_status = "sent"
            document.printed_at = now
            session.add(document)
        pdf_path, manifest_path = folder / f"{stem}.pdf", folder / f"{stem}.csv"
        with pdf_path.open("wb") as handle:
            writer.write(handle)
        manifest_path.write_text(manifest.getvalue(), encoding="utf-8")
    return PrintBatch(pdf_path, manifest_path, len(printable), held)
