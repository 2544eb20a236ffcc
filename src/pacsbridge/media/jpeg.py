"""Reading a JPEG stream's structure without decoding it.

The marker segments (ISO/IEC 10918-1 Annex B) tell whether a stream is JPEG Baseline
(Process 1, PS3.5 A.4.1) and so can be passed through, which colour model its samples
are coded in, and where the metadata segments are that must not reach the PACS.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7}) | frozenset(
    {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_SOS = 0xDA
_DHT, _DQT = 0xC4, 0xDB
_APP0, _APP2, _APP14 = 0xE0, 0xE2, 0xEE
_COM = 0xFE
# After the first scan, the end of the entropy-coded data is the first marker that
# is neither a stuffed 0xFF00 nor a restart marker RST0-7 (10918-1 B.1.1.5).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class JpegStructureError(ValueError):
    """The bytes are not a complete, well-formed JPEG stream."""


@dataclass(frozen=True)
class Component:
    """One frame component: its identifier and sampling factors (10918-1 B.2.2)."""

    identifier: int
    h: int
    v: int


@dataclass(frozen=True)
class Segment:
    """A marker segment before the first scan: marker code and payload slice."""

    marker: int
    start: int  # offset of the 0xFF of the marker
    end: int  # offset just past the segment

    def payload(self, data: bytes) -> bytes:
        return data[self.start + 4 : self.end]


@dataclass(frozen=True)
class JpegInfo:
    """What the marker segments of one JPEG stream say."""

    sof_marker: int
    precision: int
    rows: int
    columns: int
    components: tuple[Component, ...]
    adobe_transform: int | None
    segments: tuple[Segment, ...]
    scan_start: int  # offset of the first SOS marker
    end: int  # offset just past the EOI that ends the primary image
    # APPn and COM segments after the first scan: 10918-1 B.2.1 allows them
    # between scans and before EOI, and they are metadata like the others.
    late_metadata: tuple[Segment, ...] = ()

    @property
    def is_baseline(self) -> bool:
        """JPEG Baseline (Process 1): SOF0, 8-bit, one or three components, and
        its own quantization and Huffman tables.

        Motion-JPEG frames leave the Huffman tables out for the decoder to
        assume; such a stream is not complete enough to pass through.
        """
        markers = {seg.marker for seg in self.segments}
        return (
            self.sof_marker == 0xC0
            and self.precision == 8
            and len(self.components) in (1, 3)
            and {_DHT, _DQT} <= markers
        )

    @property
    def is_rgb_coded(self) -> bool:
        """Three components coded as R, G, B, without the colour transform.

        An Adobe APP14 segment decides when present (transform 0 is RGB); otherwise
        component identifiers 'R', 'G', 'B' mean RGB; anything else is YCbCr, the
        JFIF convention.
        """
        if len(self.components) != 3:
            return False
        if self.adobe_transform is not None:
            return self.adobe_transform == 0
        return tuple(c.identifier for c in self.components) == (0x52, 0x47, 0x42)

    @property
    def photometric_interpretation(self) -> str:
        """The Photometric Interpretation of this stream as DICOM pixel data.

        PS3.5 8.2.1: for JPEG Baseline, YCbCr is YBR_FULL_422 whatever the chroma
        subsampling (4:2:0 and 4:4:4 included); RGB-coded streams are RGB.
        """
        if len(self.components) == 1:
            return "MONOCHROME2"
        return "RGB" if self.is_rgb_coded else "YBR_FULL_422"

    def app_payloads(self, data: bytes, marker: int, signature: bytes) -> list[bytes]:
        """Payloads of the APPn segments whose payload starts with ``signature``."""
        return [
            p
            for s in self.segments
            if s.marker == marker and (p := s.payload(data)).startswith(signature)
        ]

    def exif(self, data: bytes) -> bytes | None:
        found = self.app_payloads(data, 0xE1, b"Exif\x00")
        return found[0] if found else None

    def icc_profile(self, data: bytes) -> bytes | None:
        """The ICC profile in the APP2 chunks, joined in sequence order (ICC.1 B.4)."""
        chunks = self.app_payloads(data, _APP2, b"ICC_PROFILE\x00")
        if not chunks:
            return None
        ordered = sorted((c[12], c[14:]) for c in chunks if len(c) > 14)
        return b"".join(part for _, part in ordered) or None


def parse(data: bytes) -> JpegInfo:
    """Walk the marker segments of ``data`` up to the end of the primary image."""
    if not data.startswith(SOI):
        raise JpegStructureError("does not start with a JPEG SOI marker")
    segments: list[Segment] = []
    frame: tuple[int, int, int, int, tuple[Component, ...]] | None = None
    adobe: int | None = None
    pos = 2
    while True:
        marker, pos = _next_marker(data, pos)
        if marker == _SOS:
            break
        if marker in (0xD8, 0xD9) or 0xD0 <= marker <= 0xD7:
            raise JpegStructureError(
                f"has an unexpected marker 0xFF{marker:02X} before its scan"
            )
        length = _segment_length(data, pos)
        segment = Segment(marker, pos - 2, pos + length)
        segments.append(segment)
        if marker in _SOF_MARKERS:
            if frame is not None:
                raise JpegStructureError("has two frame headers (SOF)")
            frame = _parse_frame(marker, segment.payload(data))
        elif marker == _APP14 and segment.payload(data).startswith(b"Adobe"):
            payload = segment.payload(data)
            adobe = payload[11] if len(payload) >= 12 else None
        pos = segment.end
    if frame is None:
        raise JpegStructureError("has no frame header (SOF) before its first scan")
    scan_start = pos - 2
    end, late = _end_of_image(data, scan_start)
    sof, precision, rows, columns, components = frame
    return JpegInfo(
        sof,
        precision,
        rows,
        columns,
        components,
        adobe,
        tuple(segments),
        scan_start,
        end,
        late,
    )


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    # 10918-1 B.1.1.2: any number of 0xFF fill bytes may precede a marker code.
    if pos >= len(data) or data[pos] != 0xFF:
        raise JpegStructureError(
            f"has no marker where one belongs (byte {pos}): the file is damaged"
        )
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        raise JpegStructureError("ends in the middle of a marker (truncated)")
    return int(data[pos]), pos + 1


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise JpegStructureError("ends inside a marker segment (truncated)")
    length = int.from_bytes(data[pos : pos + 2], "big")
    if length < 2 or pos + length > len(data):
        raise JpegStructureError(
            "has a marker segment running past its end (truncated)"
        )
    return length


def _parse_frame(
    marker: int, payload: bytes
) -> tuple[int, int, int, int, tuple[Component, ...]]:
    if len(payload) < 6:
        raise JpegStructureError("has a frame header that is too short")
    precision, rows, columns, count = struct.unpack_from(">BHHB", payload)
    if len(payload) < 6 + 3 * count or count == 0:
        raise JpegStructureError("has a frame header with missing components")
    if rows == 0 or columns == 0:
        raise JpegStructureError("declares an image of zero rows or columns")
    components = tuple(
        Component(payload[i], payload[i + 1] >> 4, payload[i + 1] & 0x0F)
        for i in range(6, 6 + 3 * count, 3)
    )
    return marker, precision, rows, columns, components


def _end_of_image(data: bytes, pos: int) -> tuple[int, tuple[Segment, ...]]:
    # Progressive and multi-scan streams carry more segments between scans; skip
    # each segment by its length and each entropy-coded run up to the next marker.
    late: list[Segment] = []
    while True:
        marker, pos = _next_marker(data, pos)
        if marker == 0xD9:
            return pos, tuple(late)
        segment = Segment(marker, pos - 2, pos + _segment_length(data, pos))
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            late.append(segment)
        pos = segment.end
        if marker == _SOS:
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise JpegStructureError(
                    "ends before its End Of Image marker (truncated)"
                )
            pos = found.start()


def without_metadata(data: bytes, info: JpegInfo) -> bytes:
    """The stream with every metadata segment dropped and nothing after its EOI."""
    return b"".join(metadata_free_parts(data, info))


def metadata_free_parts(data: bytes, info: JpegInfo) -> list[bytes | memoryview]:
    """:func:`without_metadata` as buffers: the kept segments, then views of the
    scans (one view unless metadata stands between scans), so the bulk of the
    stream is not copied.

    Kept: the coding segments (tables, frame, restart interval), JFIF APP0 without
    a thumbnail, ICC profile APP2 and Adobe APP14, which say how to read the
    samples. Dropped: EXIF, XMP, GPS and maker notes (APP1), MPF and other APP2,
    Photoshop/IPTC APP13, every other APPn, comments, and data appended after EOI
    such as gain maps and depth images. The scans are kept byte for byte.
    """
    head = [SOI]
    for seg in info.segments:
        if 0xE0 <= seg.marker <= 0xEF or seg.marker == _COM:
            kept = _kept_app_segment(data, seg)
            if kept is not None:
                head.append(kept)
        else:
            head.append(data[seg.start : seg.end])
    return [b"".join(head), *_scans_without_metadata(data, info)]


def _scans_without_metadata(data: bytes, info: JpegInfo) -> list[memoryview]:
    # The scans as views of the input, cut around any metadata segment among them;
    # a single-scan stream is one view.
    view = memoryview(data)
    parts: list[memoryview] = []
    kept_from = info.scan_start
    for seg in info.late_metadata:
        parts.append(view[kept_from : seg.start])
        kept_from = seg.end
    parts.append(view[kept_from : info.end])
    return [part for part in parts if len(part)]


def _kept_app_segment(data: bytes, seg: Segment) -> bytes | None:
    payload = seg.payload(data)
    if seg.marker == _APP0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
        # JFIF 1.02: the 14 fixed bytes, then an optional RGB thumbnail: dropped.
        return b"\xff\xe0" + struct.pack(">H", 16) + payload[:12] + b"\x00\x00"
    if seg.marker == _APP2 and payload.startswith(b"ICC_PROFILE\x00"):
        return data[seg.start : seg.end]
    if seg.marker == _APP14 and payload.startswith(b"Adobe") and len(payload) >= 12:
        # Only its 12 defined bytes (version, flags, transform): whatever else a
        # writer appended is not carried.
        return b"\xff\xee" + struct.pack(">H", 14) + payload[:12]
    return None
