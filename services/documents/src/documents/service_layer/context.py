"""What the use cases share: settings, database, storage, the PDF renderer, the antivirus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from documents.adapters.antivirus import ClamdScanner
from documents.adapters.pdf import PdfRenderer
from documents.adapters.storage import Storage
from documents.config import DocumentsSettings
from shared.platform.db import Database

PRODUCER = "documents"


@dataclass
class Documents:
    settings: DocumentsSettings
    db: Database
    storage: Storage
    renderer: PdfRenderer
    scanner: ClamdScanner
    scan_wake: asyncio.Event = field(default_factory=asyncio.Event)
    render_wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def link_key(self) -> bytes:
        return self.settings.link_secret.get_secret_value().encode()

    def mutuelle(self) -> dict:
        s = self.settings
        return {"name": s.mutuelle_name, "address": s.mutuelle_address, "registration": s.mutuelle_registration,
                "phone": s.mutuelle_phone}
