"""Opening every still format we take, with one error vocabulary.

Pillow reads JPEG (baseline, progressive, arithmetic), PNG, TIFF, BMP, WebP and GIF;
pillow-heif adds HEIC/HEIF. JPEG processes Pillow cannot decode (12-bit, lossless)
go to libjpeg through pylibjpeg-libjpeg.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, UnidentifiedImageError

from pacsbridge.errors import InputRejected
from pacsbridge.media import jpeg

pillow_heif.register_heif_opener()

# Formats of the first frame only (GIF, animated WebP, multi-page TIFF): a still is
# one picture. MPO is Pillow's name for a JPEG carrying a multi-picture index.
_FORMAT_NAMES = {"MPO": "JPEG"}
# Only these of Pillow's readers ever see an input. Others would widen what
# untrusted bytes reach (EPS runs Ghostscript), for formats no camera writes.
# (Pillow's JPEG reader also returns the multi-picture JPEGs it calls MPO.)
Image.init()
ACCEPTED_FORMATS = tuple(
    name
    for name in ("JPEG", "PNG", "TIFF", "BMP", "WEBP", "GIF", "HEIF", "AVIF")
    if name in Image.OPEN
)

# PS3.3 C.7.6.1.1.5.1 defined terms for Lossy Image Compression Method.
JPEG_LOSSY = "ISO_10918_1"
HEVC_LOSSY = "ISO_23008_2"
# 10918-1 Table B.1: SOF3, SOF7, SOF11 and SOF15 are the lossless processes.
_LOSSLESS_JPEG = frozenset({0xC3, 0xC7, 0xCB, 0xCF})


@dataclass(frozen=True)
class SourceCoding:
    """How the input file itself was compressed."""

    format: str  # as Digital Image Format Acquired says it
    lossy: bool
    method: str | None  # the DICOM term of a lossy codec, when there is one


def open_image(path: Path, data: bytes) -> Image.Image:
    """Open the picture lazily: only the header is read, nothing is decoded yet."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd metadata without naming the file; the
            # metadata is dropped anyway.
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as exc:
        if data.startswith(jpeg.SOI):
            # Pillow refuses 12- and 16-bit JPEG already when opening: libjpeg
            # decodes them (the caller has checked the frame's size by then).
            picture = _decode_with_libjpeg(path, data, exc)
            picture.format = "JPEG"
            return picture
        raise InputRejected(
            path, "is not an image format PacsBridge can read"
        ) from None
    except Exception as exc:  # decoders of untrusted bytes may raise anything
        raise InputRejected(
            path, f"has a damaged image header ({_reason(exc)})"
        ) from None


def format_name(im: Image.Image) -> str:
    """The input's format as Digital Image Format Acquired says it."""
    name = im.format or "unknown"
    return _FORMAT_NAMES.get(name, name)


def source_coding(
    im: Image.Image, data: bytes, jpeg_info: jpeg.JpegInfo | None = None
) -> SourceCoding:
    """Whether and how lossily the input was compressed, from its own bytes.

    ``jpeg_info`` is the parse the caller already has of a JPEG input.
    """
    name = format_name(im)
    if name == "JPEG":
        # Without a parse (not expected for JPEG), lossy is the safe claim.
        lossy = jpeg_info is None or jpeg_info.sof_marker not in _LOSSLESS_JPEG
        return SourceCoding(name, lossy, JPEG_LOSSY if lossy else None)
    if name == "HEIF":
        return SourceCoding(name, True, HEVC_LOSSY)
    if name == "TIFF" and im.info.get("compression") in ("jpeg", "tiff_jpeg"):
        return SourceCoding(name, True, JPEG_LOSSY)
    if name == "WEBP":
        # VP8 is lossy, VP8L lossless; DICOM defines no term for either.
        return SourceCoding(name, _webp_is_lossy(data), None)
    if name == "AVIF":
        return SourceCoding(name, True, None)  # AV1: no DICOM term either
    return SourceCoding(name, False, None)


def _webp_is_lossy(data: bytes) -> bool:
    # RIFF chunks after the 12-byte header: a "VP8 " chunk holds a lossy bitstream.
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        if kind == b"VP8 ":
            return True
        if kind == b"VP8L":
            return False
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return True


def load_pixels(path: Path, im: Image.Image, data: bytes) -> Image.Image:
    """Decode the first frame; a truncated or corrupt file is an InputRejected."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.seek(0)
            im.load()
            picture = im.copy()
        # Text chunks and comments (PNG tEXt, GIF and JPEG comments) travel in
        # info and would be written into the new JPEG: only pixels go on.
        picture.info = {
            k: v for k, v in im.info.items() if k in ("icc_profile", "transparency")
        }
        return picture
    except Exception as exc:  # decoders of untrusted bytes may raise anything
        if data.startswith(jpeg.SOI):
            return _decode_with_libjpeg(path, data, exc)
        raise InputRejected(path, f"cannot be decoded ({_reason(exc)})") from None


def _decode_with_libjpeg(path: Path, data: bytes, first: Exception) -> Image.Image:
    try:
        info = jpeg.parse(data)
    except jpeg.JpegStructureError as exc:
        raise InputRejected(path, f"is not a readable JPEG: it {exc}") from None
    if info.sof_marker == 0xC0 or (
        info.precision == 8 and info.sof_marker in (0xC1, 0xC2)
    ):
        # Pillow reads these processes: its failure means the data is damaged.
        raise InputRejected(path, f"cannot be decoded ({_reason(first)})") from None

    from libjpeg import decode  # type: ignore[attr-defined]  # rare processes only

    transform = 0 if info.is_rgb_coded or len(info.components) != 3 else 1
    try:
        samples = decode(data, colour_transform=transform)
    except (RuntimeError, ValueError) as exc:
        raise InputRejected(path, f"cannot be decoded ({_reason(exc)})") from None
    shift = max(info.precision - 8, 0)
    eight_bit = (
        (samples >> shift).astype(np.uint8) if shift else samples.astype(np.uint8)
    )
    mode = "L" if eight_bit.ndim == 2 else "RGB"
    return Image.fromarray(eight_bit, mode=mode)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
