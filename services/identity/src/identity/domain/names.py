"""How a name typed by a member is compared with the registry's."""

from __future__ import annotations

import unicodedata

_IGNORED = set(" \t-‐‑–—'’`´.")


def name_key(name: str) -> str:
    """"N'Diaye" ~ "ndiaye", "Lefèvre-Dupont" ~ "LEFEVRE DUPONT": case, accents, spaces,
    hyphens and apostrophes do not count."""
    text = unicodedata.normalize("NFKC", name).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and c not in _IGNORED)
