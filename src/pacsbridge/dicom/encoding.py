"""Encoding a built object for the wire and for files, without copying its pixels.

pydicom encodes every attribute but Pixel Data; Pixel Data, always the last element
of our objects, is written here from the still's own buffer, or from a video file
read a chunk at a time. A 4 MB photo is then never copied on its way to the socket
or the file, and a 2 GB video is never in memory: on a gateway that moves pictures
all day, the copies cost more than the network.
"""

from __future__ import annotations

import io
import itertools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID

from pacsbridge.media.stills import Still, decode_to_uncompressed

Buffer = bytes | memoryview

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000)
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
_UNDEFINED = b"\xff\xff\xff\xff"
_CHUNK = 1 << 20  # bytes read from a file at a time


class Pixels(Protocol):
    """Pixel Data as it goes to the wire: a known length, then the bytes in parts."""

    @property
    def transfer_syntax(self) -> UID: ...

    @property
    def length(self) -> int: ...

    def parts(self) -> Iterator[Buffer]: ...


@dataclass(frozen=True)
class StillPixels:
    """One still frame held in memory, in the pieces the still was read as."""

    still: Still

    @property
    def transfer_syntax(self) -> UID:
        return self.still.transfer_syntax

    @property
    def length(self) -> int:
        return self.still.pixel_length

    def parts(self) -> Iterator[Buffer]:
        return iter(self.still.pixel_parts)


@dataclass(frozen=True)
class FilePixels:
    """A whole file as Pixel Data (an MPEG-4 stream), read in chunks when sent.

    Only a chunk or two is in memory at a time, whatever the file's size. The
    file must be as it was checked (``identity``: size, mtime in ns, inode) until
    its last byte is read: a file changed meanwhile raises OSError before the
    last chunk goes out, so no destination stores a stream the job did not check,
    and two destinations never get different bytes under one SOP Instance UID.
    """

    path: Path
    length: int
    transfer_syntax: UID
    identity: tuple[int, int, int] | None = None

    def parts(self) -> Iterator[Buffer]:
        remaining = self.length
        with self.path.open("rb") as file:
            self._check(file)
            while remaining > 0:
                chunk = file.read(min(_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"{self.path.name} became shorter while being sent")
                remaining -= len(chunk)
                if remaining == 0:
                    self._check(file)
                yield chunk
            if file.read(1):
                raise OSError(f"{self.path.name} became longer while being sent")

    def _check(self, file: BinaryIO) -> None:
        if self.identity is None:
            return
        stat = os.fstat(file.fileno())
        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != self.identity:
            raise OSError(f"{self.path.name} has changed since it was checked")


@dataclass(frozen=True)
class Encoded:
    """An encoded data set: its length in bytes and its buffers, read once."""

    length: int
    parts: Iterator[Buffer]


@dataclass(frozen=True)
class BuiltObject:
    """A DICOM object: its attributes as a pydicom Dataset and its pixels apart.

    ``still`` is set for stills: a destination that refuses their compressed
    transfer syntax gets them decoded (:meth:`uncompressed`).
    """

    attributes: Dataset  # every attribute but Pixel Data, with file_meta
    pixels: Pixels
    still: Still | None = None

    @classmethod
    def of_still(cls, attributes: Dataset, still: Still) -> BuiltObject:
        return cls(attributes, StillPixels(still), still)

    @property
    def sop_instance_uid(self) -> UID:
        return UID(str(self.attributes.SOPInstanceUID))

    @property
    def transfer_syntax(self) -> UID:
        return self.pixels.transfer_syntax

    def uncompressed(self) -> BuiltObject:
        """The same object with its pixels decoded, for a destination that
        refused the compressed transfer syntax."""
        if self.still is None:
            raise ValueError("only stills have an uncompressed form")
        still = decode_to_uncompressed(self.still)
        attributes = self.attributes.copy()
        attributes.file_meta = FileMetaDataset(self.attributes.file_meta)
        attributes.file_meta.TransferSyntaxUID = still.transfer_syntax
        attributes.PhotometricInterpretation = still.photometric_interpretation
        attributes.SamplesPerPixel = still.samples_per_pixel
        return BuiltObject.of_still(attributes, still)

    def encoded(self, transfer_syntax: UID | None = None) -> Encoded:
        """The data set encoded in ``transfer_syntax`` (default: the object's own),
        as buffers to be written one after the other."""
        syntax = transfer_syntax or self.transfer_syntax
        head = DicomBytesIO()
        head.is_little_endian = True
        head.is_implicit_VR = syntax.is_implicit_VR
        write_dataset(head, self.attributes)
        header = head.getvalue()
        length, tail = _pixel_data_element(self.pixels, syntax)
        return Encoded(len(header) + length, itertools.chain([header], tail))

    def write(self, path: Path) -> None:
        """Write the object as a DICOM Part 10 file (PS3.10 7.1).

        The file appears whole or not at all: it is written under a temporary
        name and renamed, so a full disk or an interruption leaves no stub.
        """
        partial = path.with_name(f".{path.name}.partial")
        try:
            with partial.open("wb") as fh:
                self._write_part10(fh)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def dataset(self) -> Dataset:
        """The whole object read back as a pydicom Dataset (for checks: it holds
        every byte of the pixels in memory)."""
        buffer = io.BytesIO()
        self._write_part10(buffer)
        buffer.seek(0)
        return dcmread(buffer)

    def _write_part10(self, fh: BinaryIO) -> None:
        meta = DicomBytesIO()
        write_file_meta_info(meta, self.attributes.file_meta, enforce_standard=True)
        fh.write(b"\x00" * 128 + b"DICM")
        fh.write(meta.getvalue())
        for part in self.encoded().parts:
            fh.write(part)


def _pixel_data_element(pixels: Pixels, syntax: UID) -> tuple[int, Iterator[Buffer]]:
    """The Pixel Data element's length and buffers, the value read lazily."""
    length = pixels.length
    if syntax.is_encapsulated:
        # PS3.5 A.4 (and 8.2.7 for MPEG-4): undefined length, an empty Basic
        # Offset Table item, then one fragment holding the whole frame or stream,
        # padded to an even length.
        pad = b"\x00" if length % 2 else b""
        head = (
            _PIXEL_DATA_TAG + b"OB\x00\x00" + _UNDEFINED + _ITEM_TAG + b"\x00" * 4
            + _ITEM_TAG + struct.pack("<I", length + len(pad))
        )  # fmt: skip
        tail = pad + _SEQUENCE_END
        total = len(head) + length + len(tail)
        return total, itertools.chain([head], pixels.parts(), [tail])
    # Native pixel data is already even (stills pads it); OB for 8-bit samples.
    value_length = struct.pack("<I", length)
    if syntax.is_implicit_VR:
        head = _PIXEL_DATA_TAG + value_length
    else:
        head = _PIXEL_DATA_TAG + b"OB\x00\x00" + value_length
    return len(head) + length, itertools.chain([head], pixels.parts())
