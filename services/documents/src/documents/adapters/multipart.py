"""A multipart/form-data body parsed as it arrives (python-multipart's streaming parser fed from
Starlette's request.stream()): file parts go straight to spool files on disk, hashed on the way,
and the limits are enforced while the bytes flow, so a 15 MB upload never sits in memory.

Past a limit the rest of the body is read and dropped (up to a hard cap), so the client gets a
problem naming the limit rather than a connection reset in the middle of its upload.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from documents.domain.uploads import SNIFF_BYTES, display_name, megabytes
from shared.platform.problems import ProblemError, field_error

MAX_FIELD_BYTES = 8_000
# Slack for the multipart framing and the text fields on top of the files' own limit.
FRAMING_SLACK = 1_000_000


@dataclass
class SpooledFile:
    field: str
    name: str
    path: Path
    size: int = 0
    head: bytes = b""
    sha256: str = ""


@dataclass
class StreamedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[SpooledFile] = field(default_factory=list)

    def cleanup(self) -> None:
        for f in self.files:
            f.path.unlink(missing_ok=True)


def too_many_files(limit: int) -> ProblemError:
    return ProblemError(
        422, "too_many_files", "Trop de fichiers",
        f"Vous pouvez joindre {limit} fichiers au maximum par envoi.",
        extensions={"limit": limit},
    )


def file_too_large(name: str, limit: int) -> ProblemError:
    return ProblemError(
        413, "file_too_large", "Fichier trop volumineux",
        f"Le fichier « {name} » dépasse la taille maximale de {megabytes(limit)} par fichier.",
        extensions={"limit_bytes": limit, "file": name},
    )


def request_too_large(limit: int) -> ProblemError:
    return ProblemError(
        413, "request_too_large", "Envoi trop volumineux",
        f"L'ensemble des fichiers d'un envoi ne doit pas dépasser {megabytes(limit)}.",
        extensions={"limit_bytes": limit},
    )


def not_multipart() -> ProblemError:
    return ProblemError(
        415, "unsupported_media_type", "Format de requête non pris en charge",
        "Envoyez le formulaire en multipart/form-data.",
    )


async def parse_streamed_form(
    request: Request,
    *,
    spool: Path,
    file_field: str,
    max_files: int,
    max_file_bytes: int,
    max_request_bytes: int,
) -> StreamedForm:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":
        return _files_are_files(await _urlencoded(request), file_field)
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise not_multipart()
    spool.mkdir(parents=True, exist_ok=True)
    form = StreamedForm()
    state: dict = {"headers": {}, "field": b"", "value": b"", "part": None, "text": None, "handle": None,
                   "hasher": None, "error": None, "total_files_bytes": 0}

    def fail(problem: ProblemError) -> None:
        if state["error"] is None:
            state["error"] = problem
        close_file()

    def close_file() -> None:
        if state["handle"] is not None:
            state["handle"].close()
            state["handle"] = None

    def on_part_begin() -> None:
        state["headers"] = {}
        state["part"] = None
        state["text"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if filename is None:
            state["text"] = (name, bytearray())
            return
        index = len(form.files)
        shown = display_name(filename.decode("utf-8", "replace"), f"fichier-{index + 1}")
        if name == file_field and len(form.files) >= max_files:
            fail(too_many_files(max_files))
            return
        if state["error"] is not None:
            return
        path = spool / f"{uuid.uuid4().hex}.part"
        spooled = SpooledFile(field=name, name=shown, path=path)
        form.files.append(spooled)
        state["part"] = spooled
        state["handle"] = open(path, "wb")  # noqa: SIM115 - closed in on_part_end / fail
        state["hasher"] = hashlib.sha256()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["text"] is not None:
            buffer = state["text"][1]
            if len(buffer) + len(chunk) > MAX_FIELD_BYTES:
                fail(ProblemError(413, "field_too_large", "Champ trop long",
                                  f"Le champ « {state['text'][0]} » est trop long."))
                return
            buffer += chunk
            return
        part: SpooledFile | None = state["part"]
        if part is None or state["error"] is not None:
            return
        part.size += len(chunk)
        state["total_files_bytes"] += len(chunk)
        if part.size > max_file_bytes:
            fail(file_too_large(part.name, max_file_bytes))
            return
        if state["total_files_bytes"] > max_request_bytes:
            fail(request_too_large(max_request_bytes))
            return
        if len(part.head) < SNIFF_BYTES:
            part.head += chunk[: SNIFF_BYTES - len(part.head)]
        state["hasher"].update(chunk)
        state["handle"].write(chunk)

    def on_part_end() -> None:
        if state["text"] is not None:
            name, buffer = state["text"]
            try:
                form.fields[name] = buffer.decode("utf-8")
            except UnicodeDecodeError:
                form.fields[name] = buffer.decode("utf-8", "replace")
            state["text"] = None
        elif state["part"] is not None and state["handle"] is not None:
            state["part"].sha256 = state["hasher"].hexdigest()
            close_file()
        state["part"] = None

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    received = 0
    hard_cap = max_request_bytes + FRAMING_SLACK + 8 * 1024 * 1024
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_request_bytes + FRAMING_SLACK and state["error"] is None:
                fail(request_too_large(max_request_bytes))
            if state["error"] is not None:
                if received > hard_cap:
                    break  # stop reading: the connection will be closed after the answer
                continue  # drain what the client is still sending, then answer
            parser.write(chunk)
        if state["error"] is None:
            parser.finalize()
    except ProblemError:
        close_file()
        form.cleanup()
        raise
    except Exception as exc:
        close_file()
        form.cleanup()
        raise ProblemError(400, "malformed_multipart", "Formulaire illisible",
                           "Le formulaire envoyé est incomplet ou mal formé.") from exc
    close_file()
    if state["error"] is not None:
        form.cleanup()
        raise state["error"]
    if any(not f.sha256 for f in form.files):
        form.cleanup()
        raise ProblemError(400, "malformed_multipart", "Formulaire illisible",
                           "Le formulaire envoyé est incomplet ou mal formé.")
    return _files_are_files(form, file_field)


def _files_are_files(form: StreamedForm, file_field: str) -> StreamedForm:
    if file_field in form.fields:
        # Text under the files' name: a client that thinks it attached something.
        form.cleanup()
        raise ProblemError(422, "validation_failed", "Formulaire incomplet ou invalide",
                           errors=[field_error(file_field, "not_a_file", "Joignez un fichier (PDF, JPEG, PNG ou HEIC).")])
    return form


async def _urlencoded(request: Request) -> StreamedForm:
    """A form without files (a message with no attachment), as browsers send it."""
    from urllib.parse import parse_qsl

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > 4 * MAX_FIELD_BYTES:
            raise ProblemError(413, "field_too_large", "Champ trop long", "Le formulaire envoyé est trop long.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProblemError(400, "malformed_form", "Formulaire illisible", "Le formulaire envoyé est mal formé.") from exc
    return StreamedForm(fields=dict(pairs))


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
