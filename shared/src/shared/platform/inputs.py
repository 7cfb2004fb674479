"""The base of every request body: text that PostgreSQL cannot store is refused at the edge.

JSON lets a client send "\\u0000" (PostgreSQL refuses NUL in text: asyncpg raises, the member
would get a 500) and lone surrogates such as "\\ud800" (no UTF-8 form: encoding it for the
database, or for a hash, raises). Every string of a RequestBody, nested lists and dicts included,
is checked once parsed: such a field is a 422 `invalid_characters` with a French message, and
the OpenAPI document says so (each free-text string gets a pattern that excludes NUL).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

INVALID_CHARACTERS = "invalid_characters|Ce champ contient des caractères non autorisés."
NO_NUL_PATTERN = "^[^\\u0000]*$"


def storable(text: str) -> bool:
    """True when PostgreSQL can store `text` (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_storable(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_all_storable(v) for v in value)
    if isinstance(value, dict):
        return all(_all_storable(k) and _all_storable(v) for k, v in value.items())
    return True  # numbers, booleans, dates, nested RequestBody models (checked on their own)


def _document(schema: dict[str, Any]) -> None:
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            _document(option)
    elif schema.get("type") == "string":
        # Enums, constants and patterns say what they accept already; dates and such are no text.
        if not {"pattern", "enum", "const"} & set(schema) and schema.get("format") in (None, "email"):
            schema["pattern"] = NO_NUL_PATTERN
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _document(schema["items"])


class RequestBody(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if not _all_storable(value):
            raise ValueError(INVALID_CHARACTERS)
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        resolved = handler.resolve_ref_schema(schema)
        for prop in (resolved.get("properties") or {}).values():
            _document(prop)
        return schema


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: Any) -> Any:
    # pydantic's lax mode reads "0" or "1700000000" as a Unix timestamp; a date the API documents
    # as AAAA-MM-JJ must be written that way.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_parsing", "Input should be a valid date in the format YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
"""A calendar date written AAAA-MM-JJ, nothing else (for query parameters and form fields)."""
