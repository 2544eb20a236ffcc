"""Checks of the video objects a measurement made: transfer syntax, frames, the MP4.

A Video Photographic Image object carries its MP4 as the one fragment of its
encapsulated Pixel Data, after an empty Basic Offset Table (PS3.5 8.2.7, A.4).
A check reads the attributes with pydicom up to Pixel Data, then only the
fragment's header and its two ends: a 2 GB object is never read whole.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import MPEG4HP41

from harness import BenchFailure

# (7FE0,0010) OB, undefined length, in Explicit VR Little Endian
_PIXEL_DATA = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000)
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
_ITEM_HEADER = struct.Struct("<4sI")
_ENDS = 1 << 16  # bytes compared at each end of a stream


@dataclass(frozen=True)
class VideoObject:
    """Where the MP4 is in a DICOM file, and what the file says of it."""

    path: Path
    transfer_syntax: str
    frames: int  # Number of Frames
    offset: int  # of the fragment's first byte
    length: int  # of the fragment, padding included


def read_object(path: Path) -> VideoObject:
    """The layout of the video object in ``path``; BenchFailure if it is not one."""
    try:
        with path.open("rb") as file:
            ds = dcmread(file, stop_before_pixels=True)
            offset, length = _fragment(file, path)
            file.seek(offset + length)
            tail = file.read(len(_SEQUENCE_END) + 1)
    except (InvalidDicomError, struct.error) as exc:
        raise BenchFailure(f"{path.name} is not a readable DICOM file: {exc}") from exc
    if tail != _SEQUENCE_END:
        raise BenchFailure(f"{path.name}: its Pixel Data is not one fragment")
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    return VideoObject(path, syntax, int(ds.get("NumberOfFrames", 0)), offset, length)


def _fragment(file: BinaryIO, path: Path) -> tuple[int, int]:
    """Offset and length of the first fragment, after the Basic Offset Table."""
    if file.read(len(_PIXEL_DATA)) != _PIXEL_DATA:
        raise BenchFailure(f"{path.name}: no encapsulated Pixel Data where expected")
    tag, table = _ITEM_HEADER.unpack(file.read(_ITEM_HEADER.size))
    file.seek(table, 1)
    fragment, length = _ITEM_HEADER.unpack(file.read(_ITEM_HEADER.size))
    if tag != _ITEM or fragment != _ITEM:
        raise BenchFailure(f"{path.name}: its Pixel Data items are damaged")
    return file.tell(), length


def check_as_sent(
    received: Sequence[Path], sources: Sequence[Path], frames: Mapping[Path, int]
) -> None:
    """Stop unless ``received`` holds each of ``sources`` once, untouched.

    Untouched: in H.264 High Profile / Level 4.1, its MP4 the whole fragment
    (byte for byte at both ends, same length) and Number of Frames the video's.
    """
    if len(received) != len(sources):
        raise BenchFailure(f"{len(received)} objects for {len(sources)} videos")
    by_size: dict[int, list[Path]] = {}
    for source in sources:
        by_size.setdefault(source.stat().st_size, []).append(source)
    for path in received:
        obj = read_object(path)
        _check_syntax(obj)
        # Pixel Data is padded to an even length (PS3.5 A.4).
        fits = by_size.get(obj.length) or by_size.get(obj.length - 1)
        if not fits:
            raise BenchFailure(f"{path.name}: no video is {obj.length} bytes long")
        source = fits.pop()
        _check_ends(obj, source)
        if obj.frames != frames[source]:
            raise BenchFailure(
                f"{path.name}: {obj.frames} frames, {source.name} has {frames[source]}"
            )


def check_parts(
    received: Sequence[Path], source: Path, frames: int, max_bytes: int
) -> None:
    """Stop unless ``received`` are ``source`` cut into MP4s of at most
    ``max_bytes``, every frame in one of them."""
    parts = [read_object(path) for path in received]
    least = math.ceil(source.stat().st_size / max_bytes)
    if len(parts) < least:
        raise BenchFailure(f"{len(parts)} parts of {source.name}, at least {least}")
    for obj in parts:
        _check_syntax(obj)
        if obj.length > max_bytes:
            raise BenchFailure(f"{obj.path.name}: {obj.length} bytes, over {max_bytes}")
        with obj.path.open("rb") as file:
            file.seek(obj.offset + 4)
            if file.read(4) != b"ftyp":
                raise BenchFailure(f"{obj.path.name}: its fragment is not an MP4")
    counted = sum(obj.frames for obj in parts)
    if counted != frames:
        raise BenchFailure(
            f"the parts of {source.name} hold {counted} frames, it has {frames}"
        )


def _check_syntax(obj: VideoObject) -> None:
    if obj.transfer_syntax != MPEG4HP41:
        raise BenchFailure(
            f"{obj.path.name} is in {obj.transfer_syntax or 'no transfer syntax'}, "
            f"not {MPEG4HP41} (MPEG-4 AVC/H.264 High Profile / Level 4.1)"
        )


def _check_ends(obj: VideoObject, source: Path) -> None:
    size = source.stat().st_size
    take = min(_ENDS, size)
    with obj.path.open("rb") as stored, source.open("rb") as original:
        for start in (0, size - take):
            stored.seek(obj.offset + start)
            original.seek(start)
            if stored.read(take) != original.read(take):
                raise BenchFailure(
                    f"{obj.path.name}: its MP4 differs from {source.name}"
                )
