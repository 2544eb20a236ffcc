"""Receiving ``multipart/form-data`` uploads: streamed to disk, within limits.

A request's files go to a folder of their own under ``data_dir/uploads`` (the
filesystem intake moves them from, so nothing is copied twice). The body is
parsed as it arrives and never held whole in memory; the limits are enforced
while it streams, and a request over one leaves nothing behind. A service
killed mid-upload leaves a folder that :func:`remove_leftovers` deletes at the
next start.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from pacsbridge.jobs.intake import Upload

logger = logging.getLogger(__name__)

# Parsing and writing happen in a thread, a batch of this many bytes at a time:
# the event loop never waits on the disk, and a request holds at most this much
# in memory.
_BATCH_BYTES = 1024 * 1024
# A folder nobody has written to for this long belongs to no upload in progress
# on any node.
_STALE_SECONDS = 24 * 3600


class UploadError(Exception):
    """The request's form cannot be accepted; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    """What one request may bring (``[api] max_upload_bytes`` and friends)."""

    max_upload_bytes: int = 8 * 1024**3
    max_upload_files: int = 200
    max_field_bytes: int = 64 * 1024  # the context JSON and any other field

    @classmethod
    def from_settings(cls, api: object) -> UploadLimits:
        # TODO: [api] max_upload_bytes and max_upload_files belong in config.py's
        # ApiSettings (issue 5); until then the defaults apply.
        return cls(
            max_upload_bytes=getattr(api, "max_upload_bytes", cls.max_upload_bytes),
            max_upload_files=getattr(api, "max_upload_files", cls.max_upload_files),
        )


@dataclass
class ReceivedForm:
    """The uploads saved in ``folder`` and the form's other fields."""

    folder: Path
    uploads: list[Upload] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def node_folder(data_dir: Path, port: int) -> Path:
    """This node's uploads folder: one per host and port, so a node starting
    again removes its own leftovers and never another node's uploads."""
    return data_dir / "uploads" / f"{socket.gethostname()}-{port}"


def remove_leftovers(own: Path) -> int:
    """Delete ``own`` (this node's interrupted uploads) and any stale folder of
    other nodes next to it; how many upload folders were removed."""
    removed = 0
    if own.is_dir():
        removed += sum(1 for _ in own.iterdir())
        shutil.rmtree(own, ignore_errors=True)
    if own.parent.is_dir():
        deadline = time.time() - _STALE_SECONDS
        for node in own.parent.iterdir():
            for folder in node.iterdir() if node.is_dir() else ():
                if _last_written(folder) < deadline:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
    return removed


async def receive_form(
    request: Request, folder: Path, limits: UploadLimits, file_field: str
) -> ReceivedForm:
    """Stream the request's form into ``folder``; UploadError when it is not a
    form, is malformed or goes over a limit. The caller removes ``folder``."""
    boundary = _boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise _too_large("the request", limits)

    folder.mkdir(parents=True, exist_ok=True)
    form = _FormWriter(folder, limits, file_field)
    parser = MultipartParser(boundary, form.callbacks())
    received, batch = 0, bytearray()
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.max_upload_bytes:
                raise _too_large("the request", limits)
            batch += chunk
            if len(batch) >= _BATCH_BYTES:
                await run_in_threadpool(form.write, parser, bytes(batch))
                batch.clear()
        await run_in_threadpool(form.finish, parser, bytes(batch))
    except ClientDisconnect:
        raise UploadError(400, "the client went away before the upload ended") from None
    finally:
        form.close()
    return ReceivedForm(folder, form.uploads, form.fields)


def _boundary(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(
            415, "the body must be multipart/form-data with files and context fields"
        )
    return boundary


def _too_large(what: str, limits: UploadLimits) -> UploadError:
    return UploadError(
        413,
        f"{what} is over the limit of {limits.max_upload_bytes} bytes "
        "([api] max_upload_bytes)",
    )


class _FormWriter:
    """The parser's callbacks: each file part to its own file, fields to text."""

    def __init__(self, folder: Path, limits: UploadLimits, file_field: str) -> None:
        self.folder, self.limits, self.file_field = folder, limits, file_field
        self.uploads: list[Upload] = []
        self.fields: dict[str, str] = {}
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header_name = self._header_value = b""
        self._file: IO[bytes] | None = None
        self._field: tuple[str, bytearray] | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def write(self, parser: MultipartParser, data: bytes) -> None:
        try:
            parser.write(data)
        except MultipartParseError as exc:
            raise UploadError(400, f"the multipart body is malformed: {exc}") from None

    def finish(self, parser: MultipartParser, data: bytes) -> None:
        self.write(parser, data)
        parser.finalize()
        if not self.ended:
            raise UploadError(400, "the multipart body ended before its last boundary")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition.decode("latin-1"))
        name = _text(params.get(b"name", b""))
        if name == self.file_field:
            self._open_file(_text(params.get(b"filename", b"")) or "file")
        elif b"filename" in params:
            raise UploadError(
                400, f"files go in form fields named {self.file_field!r}, not {name!r}"
            )
        elif name in self.fields:
            raise UploadError(400, f"the form field {name!r} is given twice")
        else:
            self._field = (name, bytearray())

    def _open_file(self, client_name: str) -> None:
        if len(self.uploads) >= self.limits.max_upload_files:
            raise UploadError(
                413,
                f"more than {self.limits.max_upload_files} files in one request "
                "([api] max_upload_files)",
            )
        path = self.folder / f"{len(self.uploads) + 1:04d}"
        self._file = open(path, "xb")  # noqa: SIM115 - closed at the part's end
        self.uploads.append(Upload(client_name, path))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
        elif self._field is not None:
            name, value = self._field
            value += data[start:end]
            if len(value) > self.limits.max_field_bytes:
                raise UploadError(
                    413, f"the form field {name!r} is over "
                    f"{self.limits.max_field_bytes} bytes",
                )  # fmt: skip

    def _part_end(self) -> None:
        if self._file is not None:
            # The job is durable from the 202 on: its files must be on disk
            # before intake stores it.
            self._file.flush()
            os.fsync(self._file.fileno())
            self.close()
        elif self._field is not None:
            name, value = self._field
            try:
                self.fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(
                    400, f"the form field {name!r} is not UTF-8"
                ) from None
            self._field = None

    def _end(self) -> None:
        self.ended = True


def _text(value: bytes) -> str:
    # Header values arrive as bytes; browsers send file names as UTF-8.
    return value.decode("utf-8", errors="replace")


def _last_written(folder: Path) -> float:
    try:
        times = [folder.stat().st_mtime]
        times += [path.stat().st_mtime for path in folder.iterdir()]
    except OSError:  # removed meanwhile by the request that owned it
        return time.time()
    return max(times)
