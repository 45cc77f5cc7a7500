"""What a staff upload may hold: Markdown files, or zips of them, checked before anything runs.

Every check here happens before the ingest starts, so a malformed upload is one plain 422
naming the file and nothing stored changes. A name becomes the document's `source`, as a
file's path under the folder does for `posada ingest`: so it must be a relative path that
stays inside that folder (no `..`, no absolute path, no backslash). A zip is read with
bounds on its members' count and sizes from its directory, and each member is read no
further than those bounds, whatever its header claims (a zip bomb stops there). The
bounds are the whole upload's: what earlier files and members took is counted as each
member is read, so many small zips stop as one large one does.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from posada.core.errors import InvalidInput

MAX_FILES = 200  # documents in one upload, loose or in zips
MAX_FILE_BYTES = 2 * 1024 * 1024  # one document, unpacked
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # the whole upload, unpacked
MAX_NAME_CHARS = 300
# What an archiver adds beside the files (a Mac's resource forks, Finder's folder state).
_ARCHIVER_LITTER = ("__MACOSX/", ".DS_Store")


@dataclass(frozen=True)
class UploadedFile:
    """One part of the request: its file name and bytes."""

    name: str
    data: bytes


def unpack(files: list[UploadedFile]) -> dict[str, bytes]:
    """The Markdown documents of an upload by source name; InvalidInput naming the file."""
    if not files:
        raise InvalidInput("no files: send .md files or a .zip of them as multipart/form-data")
    documents: dict[str, bytes] = {}
    total = 0
    for upload in files:
        lowered = upload.name.lower()
        if lowered.endswith(".zip"):
            members: Iterator[tuple[str, bytes]] = _zip_members(
                upload, files_left=MAX_FILES - len(documents), bytes_left=MAX_TOTAL_BYTES - total
            )
        elif lowered.endswith(".md"):
            members = iter([(source_name(upload.name), upload.data)])
        else:
            raise InvalidInput(f"{upload.name}: only .md files and .zip archives of them")
        for source, data in members:
            if source in documents:
                raise InvalidInput(f"{source}: uploaded twice")
            documents[source] = _markdown(source, data)
            total += len(data)
            if len(documents) > MAX_FILES:
                raise InvalidInput(f"more than {MAX_FILES} documents in one upload")
            if total > MAX_TOTAL_BYTES:
                raise InvalidInput(f"the documents add up to more than {MAX_TOTAL_BYTES} bytes")
    _no_file_as_folder(documents)
    return documents


def source_name(name: str) -> str:
    """`name` as a document's source: a relative path inside the upload's folder."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if (
        not parts
        or name.startswith("/")
        or "\\" in name
        or ".." in parts
        or ":" in parts[0]
        or len(name) > MAX_NAME_CHARS
        or any(not ch.isprintable() for ch in name)
    ):
        raise InvalidInput(f"{name!r}: not a usable file name (a relative path, no '..')")
    if not parts[-1].endswith(".md") or parts[-1] == ".md":
        raise InvalidInput(f"{name}: only .md files (lowercase '.md')")
    return "/".join(parts)


def _no_file_as_folder(documents: dict[str, bytes]) -> None:
    """Refuse `a.md` beside `a.md/b.md`: one path cannot be a file and a folder."""
    folders = {source.rsplit("/", 1)[0] for source in documents if "/" in source}
    for source in documents:
        if source in folders or any(f.startswith(f"{source}/") for f in folders):
            raise InvalidInput(f"{source}: uploaded both as a file and as a folder")


def _markdown(source: str, data: bytes) -> bytes:
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{source}: over {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{source}: not UTF-8 text (byte {exc.start})") from exc
    if "\x00" in text:
        raise InvalidInput(f"{source}: binary content, not a Markdown document")
    return data


def _zip_members(
    upload: UploadedFile, *, files_left: int, bytes_left: int
) -> Iterator[tuple[str, bytes]]:
    """The zip's Markdown members (name inside the zip, bytes), checked, one at a time (the
    caller counts each before the next is unpacked), within what the upload has left."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload.data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidInput(f"{upload.name}: not a readable zip archive") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir() and not _litter(i.filename)]
        if len(infos) > files_left:
            raise InvalidInput(f"{upload.name}: more than {MAX_FILES} files in the upload")
        if sum(i.file_size for i in infos) > bytes_left:
            raise InvalidInput(
                f"{upload.name}: the upload unpacks to more than {MAX_TOTAL_BYTES} bytes"
            )
        found = False
        for info in infos:
            where = f"{upload.name}: {info.filename}"
            try:
                source = source_name(info.filename)
            except InvalidInput as exc:
                raise InvalidInput(f"{upload.name}: {exc.message}") from exc
            if info.flag_bits & 0x1:
                raise InvalidInput(f"{where}: encrypted members cannot be read")
            found = True
            yield source, _read_member(archive, info, where)
    if not found:
        raise InvalidInput(f"{upload.name}: holds no .md files")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """The member's bytes, never more than a document may hold."""
    try:
        with archive.open(info) as member:
            data = member.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError) as exc:
        raise InvalidInput(f"{where}: cannot be unpacked ({exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{where}: over {MAX_FILE_BYTES} bytes")
    return data


def _litter(name: str) -> bool:
    return name.startswith(_ARCHIVER_LITTER[0]) or name.rsplit("/", 1)[-1] == _ARCHIVER_LITTER[1]
