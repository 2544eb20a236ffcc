"""Test pictures made on the fly, and independent readers of what the code made.

Nothing here runs PacsBridge's code: the checks read JPEG markers and PNG chunks
on their own, so a bug in ``pacsbridge.media.jpeg`` cannot hide itself.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

if TYPE_CHECKING:
    from pacsbridge.media.stills import Still

pillow_heif.register_heif_opener()  # Pillow writes HEIF for the tests too

# The ``load`` fixture: ``load(data, name="input.jpg", **image_settings)``.
LoadStill = Callable[..., "Still"]


def require_tool(name: str) -> str:
    """The tool's path; a skip with the reason when it is missing, or a failure
    when ``PACSBRIDGE_REQUIRE_PEERS=1`` says every tool must be there (CI)."""
    found = shutil.which(name)
    if found is not None:
        return found
    reason = f"{name} is not installed"
    if os.environ.get("PACSBRIDGE_REQUIRE_PEERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


# Upright test picture: four quadrants whose colours name their place.
TOP_LEFT = (220, 40, 40)  # red
TOP_RIGHT = (40, 190, 40)  # green
BOTTOM_LEFT = (40, 40, 220)  # blue
BOTTOM_RIGHT = (230, 220, 40)  # yellow
QUADRANT_COLOURS = {
    "top-left": TOP_LEFT,
    "top-right": TOP_RIGHT,
    "bottom-left": BOTTOM_LEFT,
    "bottom-right": BOTTOM_RIGHT,
}


def gradient(width: int, height: int) -> np.ndarray:
    """RGB: red rises left to right, green top to bottom, blue is a soft ripple."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = x * 255 / max(width - 1, 1)
    green = y * 255 / max(height - 1, 1)
    blue = 128 + 60 * np.sin(x / 3) * np.cos(y / 4)
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def quadrants(width: int, height: int) -> np.ndarray:
    """RGB: the four quadrant colours, with a faint texture so it is a photo."""
    picture = np.zeros((height, width, 3), np.int16)
    top, left = height // 2, width // 2
    picture[:top, :left] = TOP_LEFT
    picture[:top, left:] = TOP_RIGHT
    picture[top:, :left] = BOTTOM_LEFT
    picture[top:, left:] = BOTTOM_RIGHT
    y, x = np.mgrid[0:height, 0:width]
    picture += ((x + 2 * y) % 5 - 2)[..., None]
    return picture.clip(0, 255).astype(np.uint8)


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """How a camera stores ``upright`` when it writes EXIF Orientation ``n``.

    CIPA DC-008 4.6.4 Table 6 says where the stored row 0 and column 0 are seen:
    1 top/left, 2 top/right, 3 bottom/right, 4 bottom/left, 5 left/top,
    6 right/top, 7 right/bottom, 8 left/bottom.
    """
    stored = {
        1: upright,
        2: upright[:, ::-1],
        3: upright[::-1, ::-1],
        4: upright[::-1, :],
        5: upright.transpose(1, 0, 2),
        6: np.rot90(upright, k=1),
        7: upright[::-1, ::-1].transpose(1, 0, 2),
        8: np.rot90(upright, k=-1),
    }[orientation]
    return np.ascontiguousarray(stored)


def quadrant_names(picture: np.ndarray) -> dict[str, str]:
    """Which known colour each quadrant of ``picture`` shows (mean of its centre)."""
    height, width = picture.shape[:2]
    found: dict[str, str] = {}
    for place in QUADRANT_COLOURS:
        row = height // 4 if place.startswith("top") else 3 * height // 4
        col = width // 4 if place.endswith("left") else 3 * width // 4
        patch = picture[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
        mean = patch.reshape(-1, 3).mean(axis=0)
        found[place] = min(
            QUADRANT_COLOURS,
            key=lambda name: float(np.abs(mean - QUADRANT_COLOURS[name]).sum()),
        )
    return found


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def jpeg_bytes(picture: np.ndarray | Image.Image, **options: object) -> bytes:
    """Pillow's baseline JPEG of ``picture`` (quality 95 unless told)."""
    im = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", **{"quality": 95, **options})
    return buffer.getvalue()


def encoded(
    picture: np.ndarray | Image.Image, image_format: str, **options: object
) -> bytes:
    im = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    im.save(buffer, image_format, **options)
    return buffer.getvalue()


def ppm_bytes(picture: np.ndarray) -> bytes:
    height, width = picture.shape[:2]
    return b"P6\n%d %d\n255\n" % (width, height) + picture.tobytes()


def cjpeg(picture: np.ndarray, *switches: str) -> bytes:
    """libjpeg-turbo's cjpeg on ``picture``, e.g. ``-rgb`` or ``-arithmetic``."""
    done = subprocess.run(
        ["cjpeg", *switches], input=ppm_bytes(picture), capture_output=True, check=True
    )
    return done.stdout


# --- JPEG marker segments, read and written by hand (ISO/IEC 10918-1 B.1) ---


def segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each marker segment up to and including the first SOS."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    pos = 2
    while True:
        assert data[pos] == 0xFF, f"no marker at byte {pos}"
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, data[pos + 4 : pos + 2 + length]
        if marker == 0xDA:
            return
        pos += 2 + length


def sof_marker(data: bytes) -> int:
    """The frame header's marker: 0xC0 for baseline, 0xC2 progressive, ..."""
    for marker, _ in segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
    raise AssertionError("no frame header")


def app_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_soi(data: bytes, *segments_: bytes) -> bytes:
    return data[:2] + b"".join(segments_) + data[2:]


def insert_after_app0(data: bytes, *segments_: bytes) -> bytes:
    """Put segments after the JFIF APP0 (if any), where cameras put EXIF and XMP."""
    end = 2
    if data[2:4] == b"\xff\xe0":
        end = 4 + int.from_bytes(data[4:6], "big")
    return data[:end] + b"".join(segments_) + data[end:]


def remove_segments(data: bytes, marker: int) -> bytes:
    """``data`` without the marker segments of one kind before the first scan."""
    out, pos = [data[:2]], 2
    while True:
        code = data[pos + 1]
        if code == 0xDA:
            return b"".join([*out, data[pos:]])
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if code != marker:
            out.append(data[pos:end])
        pos = end


def set_component_ids(data: bytes, ids: tuple[int, int, int]) -> bytes:
    """Rename the three components in the frame header and the first scan header."""
    out = bytearray(data)
    pos = 2
    while True:
        marker = out[pos + 1]
        length = int.from_bytes(out[pos + 2 : pos + 4], "big")
        if 0xC0 <= marker <= 0xC2:
            for i, identifier in enumerate(ids):
                out[pos + 10 + 3 * i] = identifier
        if marker == 0xDA:
            for i, identifier in enumerate(ids):
                out[pos + 5 + 2 * i] = identifier
            return bytes(out)
        pos += 2 + length


def set_adobe_transform(data: bytes, transform: int) -> bytes:
    """Rewrite the transform flag of the Adobe APP14 segment (payload byte 11)."""
    at = data.index(b"Adobe")
    return data[: at + 11] + bytes([transform]) + data[at + 12 :]


def adobe_segment(transform: int) -> bytes:
    # Adobe Technical Note 5116: "Adobe", version 100, flags0, flags1, transform.
    return app_segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, transform))


def set_frame_size(data: bytes, width: int, height: int) -> bytes:
    """Claim another image size in the frame header, the scan left as it is."""
    out = bytearray(data)
    for marker, payload in segments(data):
        if 0xC0 <= marker <= 0xC2:
            at = data.index(payload) + 1
            out[at : at + 4] = struct.pack(">HH", height, width)
            return bytes(out)
    raise AssertionError("no frame header")


# --- PNG written by hand, for bit depths and headers Pillow will not write ---


def png_bytes(samples: np.ndarray, colour_type: int, bit_depth: int) -> bytes:
    """A PNG of ``samples`` (rows x columns [x channels]), filter 0 on every row."""
    height, width = samples.shape[:2]
    big_endian = samples.astype(">u2") if bit_depth == 16 else samples.astype("u1")
    rows = big_endian.reshape(height, -1).view(np.uint8).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR claiming another size (and a correct CRC)."""
    header = bytearray(data[16:29])
    header[0:8] = struct.pack(">II", width, height)
    return data[:8] + _png_chunk(b"IHDR", bytes(header)) + data[33:]


# --- Colour profiles ---


def swapped_primaries_profile() -> bytes:
    """An RGB display profile whose red and blue primaries trade places.

    Built from littlecms's sRGB by swapping the rXYZ and bXYZ entries of its tag
    table (ICC.1 7.3): whatever honours it turns red things blue, unmistakably.
    """
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = int.from_bytes(data[128:132], "big")
    entries = {
        bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)
    }
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = (
        data[blue + 4 : blue + 12],
        data[red + 4 : red + 12],
    )
    data[84:100] = bytes(16)  # the profile ID no longer matches: say there is none
    return bytes(data)


# --- Reading what came out ---


def decoded(pixel_data: bytes, rows: int, columns: int, samples: int) -> np.ndarray:
    """RGB samples of a still's pixel data, compressed or not."""
    if pixel_data[:2] == b"\xff\xd8":
        with Image.open(io.BytesIO(pixel_data)) as im:
            picture = np.asarray(im.convert("RGB"))
        assert picture.shape[:2] == (rows, columns)
        return picture
    count = rows * columns * samples
    flat = np.frombuffer(pixel_data[:count], np.uint8)
    if samples == 1:
        return np.repeat(flat.reshape(rows, columns, 1), 3, axis=2)
    return flat.reshape(rows, columns, 3)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- Metadata a phone writes: where, who, which device ---

PRIVATE_STRINGS = (
    b"JANE-DOE-ARTIST",
    b"MAKERNOTE-SERIAL-4711",
    b"SECRET-HOME-ADDRESS",
    b"XMP-CREATOR-JANE",
    b"IPTC-BYLINE-JANE",
    b"MPF-INDEX",
    b"COMMENT-JANE",
    b"TRAILING-GAIN-MAP",
)


def private_exif(orientation: int = 1) -> bytes:
    """EXIF with an owner (Artist), a maker note and a GPS position."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x013B] = "JANE-DOE-ARTIST"
    exif.get_ifd(0x8769)[0x927C] = b"MAKERNOTE-SERIAL-4711"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (47.0, 22.0, 30.0)
    gps[0x1C] = b"ASCII\x00\x00\x00SECRET-HOME-ADDRESS"  # GPSAreaInformation
    return exif.tobytes()


def with_private_metadata(clean: bytes, orientation: int = 1) -> bytes:
    """``clean`` as a phone would write it: every kind of metadata segment added
    after its JFIF header, and a gain map appended after its end."""
    return (
        insert_after_app0(
            clean,
            app_segment(0xE1, b"Exif\x00\x00" + private_exif(orientation)),
            app_segment(
                0xE1,
                b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><dc:creator>"
                b"XMP-CREATOR-JANE</dc:creator></x:xmpmeta>",
            ),
            app_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04IPTC-BYLINE-JANE"),
            app_segment(0xE2, b"MPF\x00MPF-INDEX"),
            app_segment(0xFE, b"COMMENT-JANE"),
        )
        + b"TRAILING-GAIN-MAP"
    )


def quantization_tables(data: bytes) -> list[bytes]:
    """The DQT payloads of a JPEG: equal tables mean the same quality setting."""
    return [payload for marker, payload in segments(data) if marker == 0xDB]


# --- JPEG processes Pillow does not write, made by DCMTK ---


def dcmtk_jpeg(samples: np.ndarray, bits_stored: int, *switches: str) -> bytes:
    """The one JPEG fragment dcmcjpeg makes of ``samples``, e.g. with ``+ee``
    (extended, 12-bit) or ``+e1`` (lossless, selection value 1)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.dcm"), Path(folder, "out.dcm")
        _native_dicom(samples, bits_stored).save_as(source, enforce_file_format=True)
        subprocess.run(
            ["dcmcjpeg", *switches, str(source), str(target)],
            check=True,
            capture_output=True,
        )
        ds = dcmread(target)
        return next(generate_frames(ds.PixelData, number_of_frames=1))


def _native_dicom(samples: np.ndarray, bits_stored: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = samples.shape[:2]
    colour = samples.ndim == 3
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = 16 if bits_stored > 8 else 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_stored, bits_stored - 1, 0
    dtype = "<u2" if bits_stored > 8 else "u1"
    ds.PixelData = samples.astype(dtype).tobytes()
    return ds


def sequential_scans(picture: np.ndarray, folder: Path) -> bytes:
    """Baseline JPEG with one scan per component (non-interleaved, still SOF0)."""
    script = folder / "scans.txt"
    script.write_text("0;\n1;\n2;\n")
    return cjpeg(picture, "-scans", str(script))


def insert_before_scan(data: bytes, number: int, *segments_: bytes) -> bytes:
    """Put segments just before the ``number``-th SOS (counting from 0)."""
    at = -1
    for _ in range(number + 1):
        at = data.index(b"\xff\xda", at + 1)
    return data[:at] + b"".join(segments_) + data[at:]
