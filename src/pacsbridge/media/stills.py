"""Stills: from an input file to pixel data a DICOM viewer shows upright and true.

Baseline JPEG is passed through (metadata segments dropped, scans untouched, rotated
losslessly when EXIF says so and the geometry allows). Everything else is decoded,
turned upright, converted to sRGB and re-encoded as baseline JPEG at the configured
quality, or kept uncompressed when the quality is ``lossless``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from PIL import Image, ImageCms
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from pacsbridge.config import ImageSettings
from pacsbridge.errors import InputRejected
from pacsbridge.media import decoders, jpeg

logger = logging.getLogger(__name__)

# Our own check of the pixel count comes first and names the setting; Pillow's
# built-in bomb check would only repeat it with a less useful message.
Image.MAX_IMAGE_PIXELS = None

JPEG_LOSSY = decoders.JPEG_LOSSY

# EXIF Orientation (CIPA DC-008 4.6.4) to the transform that makes the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_JPEGTRAN_ARGS = {
    2: ["-flip", "horizontal"],
    3: ["-rotate", "180"],
    4: ["-flip", "vertical"],
    5: ["-transpose"],
    6: ["-rotate", "90"],
    7: ["-transverse"],
    8: ["-rotate", "270"],
}
_EXIF_ORIENTATION = 0x0112
_MAX_SIDE = 65500
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class InputCheck:
    """The identity of an input file when it was read, and what parsing it found."""

    size: int
    mtime_ns: int
    inode: int
    jpeg_info: jpeg.JpegInfo | None = None

    def same_file(self, other: InputCheck) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (
            other.size,
            other.mtime_ns,
            other.inode,
        )


@dataclass(frozen=True)
class Still:
    """One still image as DICOM pixel data, with what a viewer needs to read it."""

    pixel_parts: tuple[bytes | memoryview, ...]  # one frame, in pieces
    transfer_syntax: UID
    rows: int
    columns: int
    samples_per_pixel: int
    photometric_interpretation: str
    source_format: str
    lossy_methods: tuple[str, ...] = ()
    lossy_ratios: tuple[float, ...] = ()
    icc_profile: bytes | None = None
    passed_through: bool = False
    # Whether the image has ever been through lossy compression.
    lossy: bool = False
    # The input as read; with the JPEG structure when it was passed through.
    check: InputCheck | None = None

    @property
    def pixel_data(self) -> bytes:
        """The frame as one bytes object (a copy: the hot paths use the parts)."""
        if len(self.pixel_parts) == 1 and isinstance(self.pixel_parts[0], bytes):
            return self.pixel_parts[0]
        return b"".join(self.pixel_parts)

    @property
    def pixel_length(self) -> int:
        return sum(len(part) for part in self.pixel_parts)


def load_still(
    path: Path, settings: ImageSettings, checked: InputCheck | None = None
) -> Still:
    """Read ``path`` and make it DICOM pixel data; InputRejected names what is wrong.

    ``checked`` is the :attr:`Still.check` of an earlier load of the same file:
    when the file has not changed since, its JPEG structure is not parsed again.
    """
    data, check = _read(path, settings.max_file_size)
    known = (
        checked.jpeg_info if checked is not None and checked.same_file(check) else None
    )
    info = None
    if data.startswith(jpeg.SOI):
        info = known or _parse_jpeg(path, data)
        check = replace(check, jpeg_info=info)
        passed = _pass_through_jpeg(path, data, settings, info, check)
        if passed is not None:
            return passed
    return replace(_decode_and_encode(path, data, settings, info), check=check)


def _parse_jpeg(path: Path, data: bytes) -> jpeg.JpegInfo:
    try:
        return jpeg.parse(data)
    except jpeg.JpegStructureError as exc:
        raise InputRejected(path, f"is not a readable JPEG: it {exc}") from None


def decode_to_uncompressed(still: Still) -> Still:
    """The same picture uncompressed, for a destination that refuses JPEG Baseline."""
    if still.transfer_syntax != JPEGBaseline8Bit:
        return still
    with Image.open(io.BytesIO(still.pixel_data)) as im:
        if still.photometric_interpretation == "RGB":
            im.draft("RGB", im.size)
        pixels = im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy()
    return replace(
        still,
        pixel_parts=(_pad_even(pixels.tobytes()),),
        transfer_syntax=ExplicitVRLittleEndian,
        photometric_interpretation="RGB" if pixels.mode == "RGB" else "MONOCHROME2",
        samples_per_pixel=3 if pixels.mode == "RGB" else 1,
        passed_through=False,
    )


def _read(path: Path, max_size: int) -> tuple[bytes, InputCheck]:
    # O_NONBLOCK: opening a FIFO must not wait for a writer; the check below
    # refuses it, and anything else that is not a plain file.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except IsADirectoryError:
        raise InputRejected(path, "is a folder, not an image file") from None
    except OSError as exc:
        raise InputRejected(path, f"cannot be read ({exc.strerror})") from None
    try:
        stat = os.fstat(fd)
        if S_ISDIR(stat.st_mode):
            raise InputRejected(path, "is a folder, not an image file")
        if not S_ISREG(stat.st_mode):
            raise InputRejected(path, "is not a regular file")
        if stat.st_size > max_size:
            raise InputRejected(
                path,
                f"is {stat.st_size} bytes, more than image.max_file_size "
                f"({max_size}) allows",
            )
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(max_size + 1)
    except OSError as exc:
        raise InputRejected(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if not data:
        raise InputRejected(path, "is empty")
    return data, InputCheck(stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _check_pixels(path: Path, rows: int, columns: int, settings: ImageSettings) -> None:
    # Rows and Columns are US (PS3.5 6.2) and baseline JPEG stops at 65500.
    if max(rows, columns) > _MAX_SIDE:
        raise InputRejected(
            path,
            f"is {columns}x{rows} pixels; a side longer than {_MAX_SIDE} pixels "
            "cannot be stored",
        )
    if rows * columns > settings.max_pixels:
        raise InputRejected(
            path,
            f"has {columns}x{rows} pixels, more than image.max_pixels "
            f"({settings.max_pixels}) allows",
        )


# TODO: the scans are checked for structure only, not decoded: corrupt entropy
# data or a frame header that lies about the size goes through as it is.
def _pass_through_jpeg(
    path: Path,
    data: bytes,
    settings: ImageSettings,
    info: jpeg.JpegInfo,
    check: InputCheck,
) -> Still | None:
    """The JPEG's own scans as pixel data, or None when it must be re-encoded."""
    _check_pixels(path, info.rows, info.columns, settings)
    if not info.is_baseline or settings.quality == "lossless":
        return None

    parts: tuple[bytes | memoryview, ...] = tuple(jpeg.metadata_free_parts(data, info))
    exif = info.exif(data)
    orientation = _orientation(lambda: _exif_of_segment(exif)) if exif else 1
    if orientation != 1:
        rotated = _rotate_losslessly(b"".join(parts), orientation)
        if rotated is None:
            return None
        parts, info = (rotated[0],), rotated[1]
    length = sum(len(part) for part in parts)
    return Still(
        pixel_parts=parts,
        transfer_syntax=JPEGBaseline8Bit,
        rows=info.rows,
        columns=info.columns,
        samples_per_pixel=len(info.components),
        photometric_interpretation=info.photometric_interpretation,
        source_format="JPEG",
        lossy=True,
        lossy_methods=(JPEG_LOSSY,),
        lossy_ratios=(_ratio(info.rows, info.columns, len(info.components), length),),
        icc_profile=_usable_profile(info.icc_profile(data)),
        passed_through=True,
        check=check,
    )


def _usable_profile(icc: bytes | None) -> bytes | None:
    """The ICC profile when LittleCMS can read it; a broken one is not copied."""
    if icc is None:
        return None
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError):
        logger.info("embedded colour profile is unusable; it is not carried over")
        return None
    return icc


def _orientation(read_exif: Callable[[], Image.Exif]) -> int:
    """EXIF Orientation 1-8; broken EXIF, common in the wild, counts as upright."""
    try:
        with warnings.catch_warnings():
            # Pillow warns "Corrupt EXIF data" without naming the file; we log it.
            warnings.simplefilter("ignore")
            value = read_exif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # any parser failure: the orientation then decides nothing
        logger.info("EXIF block cannot be parsed; orientation taken as upright")
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_of_segment(payload: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(payload)
    return exif


def _rotate_losslessly(
    stream: bytes, orientation: int
) -> tuple[bytes, jpeg.JpegInfo] | None:
    """Rotate the DCT coefficients with jpegtran; None when that cannot be exact.

    ``-perfect`` makes jpegtran refuse rather than drop the partial edge blocks
    that a rotation cannot move, so the picture is never cropped.
    """
    jpegtran = shutil.which("jpegtran")
    if jpegtran is None:
        logger.info("jpegtran is not installed: rotated JPEGs are re-encoded")
        return None
    args = [jpegtran, "-perfect", "-copy", "all", *_JPEGTRAN_ARGS[orientation]]
    try:
        done = subprocess.run(args, input=stream, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        logger.warning("jpegtran did not run: the rotated JPEG is re-encoded")
        return None
    if done.returncode != 0:
        return None
    info = jpeg.parse(done.stdout)
    return (done.stdout, info) if info.is_baseline else None


def _decode_and_encode(
    path: Path, data: bytes, settings: ImageSettings, info: jpeg.JpegInfo | None
) -> Still:
    picture, source = _decode_upright_srgb(path, data, settings, info)
    # A lossy source stays lossy whatever we do next (PS3.3 C.7.6.1.1.5); its
    # method and ratio are listed where DICOM has a term for its codec.
    lossy_methods: tuple[str, ...] = ()
    lossy_ratios: tuple[float, ...] = ()
    if source.method is not None:
        lossy_methods = (source.method,)
        lossy_ratios = (_ratio(picture.height, picture.width, 3, len(data)),)

    if settings.quality == "lossless":
        return Still(
            pixel_parts=(_pad_even(picture.tobytes()),),
            transfer_syntax=ExplicitVRLittleEndian,
            rows=picture.height,
            columns=picture.width,
            samples_per_pixel=3,
            photometric_interpretation="RGB",
            source_format=source.format,
            lossy=source.lossy,
            lossy_methods=lossy_methods,
            lossy_ratios=lossy_ratios,
        )
    buffer = io.BytesIO()
    picture.info = {}  # nothing but pixels: no comment, EXIF or profile is copied
    picture.save(buffer, "JPEG", quality=settings.quality, subsampling="4:2:0")
    stream = buffer.getvalue()
    return Still(
        pixel_parts=(stream,),
        transfer_syntax=JPEGBaseline8Bit,
        rows=picture.height,
        columns=picture.width,
        samples_per_pixel=3,
        photometric_interpretation="YBR_FULL_422",
        source_format=source.format,
        lossy=True,
        lossy_methods=(*lossy_methods, JPEG_LOSSY),
        lossy_ratios=(
            *lossy_ratios,
            _ratio(picture.height, picture.width, 3, len(stream)),
        ),
    )


def _decode_upright_srgb(
    path: Path, data: bytes, settings: ImageSettings, info: jpeg.JpegInfo | None
) -> tuple[Image.Image, decoders.SourceCoding]:
    with decoders.open_image(path, data) as im:
        _check_pixels(path, im.height, im.width, settings)
        source = decoders.source_coding(im, data, info)
        picture = decoders.load_pixels(path, im, data)
        # HEIF carries its rotation in the container and pillow-heif applies it.
        orientation = 1 if source.format == "HEIF" else _orientation(im.getexif)
        icc = im.info.get("icc_profile")

    picture = _to_srgb(picture, icc)
    if orientation in _TRANSPOSE:
        picture = picture.transpose(_TRANSPOSE[orientation])
    return picture, source


def _to_srgb(picture: Image.Image, icc: bytes | None) -> Image.Image:
    """Flatten any mode to 8-bit sRGB, honouring an embedded colour profile."""
    picture = _eight_bit(picture)
    if picture.mode in ("P", "PA"):
        has_alpha = picture.mode == "PA" or "transparency" in picture.info
        picture = picture.convert("RGBA" if has_alpha else "RGB")
    if icc and picture.mode in ("RGB", "RGBA", "L", "CMYK"):
        picture = _apply_profile(picture, icc)
    if picture.mode in ("RGBA", "LA", "RGBa", "La"):
        # Transparent areas of a clinical photo are shown on white, as on paper.
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, rgba)
    return picture.convert("RGB") if picture.mode != "RGB" else picture


def _eight_bit(picture: Image.Image) -> Image.Image:
    # Pillow's plain conversion clips 16-bit samples; scale them to 8 bits instead.
    if picture.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        maximum = 65535 if picture.mode.startswith("I;16") else None
        wide = picture.convert("I")
        if maximum is None:
            extrema = wide.getextrema()
            maximum = max(int(extrema[1]), 255)  # type: ignore[arg-type]
        return wide.point(lambda v: v * (255 / maximum)).convert("L")
    if picture.mode == "F":
        # Floating-point samples are 0 to 1 by convention, or an arbitrary range.
        high = float(picture.getextrema()[1])  # type: ignore[arg-type]
        scale = 255.0 if high <= 1.0 else 255.0 / high
        return picture.point(lambda v: v * scale).convert("L")
    if picture.mode == "1":
        return picture.convert("L")
    return picture


def _apply_profile(picture: Image.Image, icc: bytes) -> Image.Image:
    output_mode = "RGBA" if picture.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            picture, source, _SRGB, outputMode=output_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        logger.info("embedded colour profile is unusable; pixels taken as sRGB")
        return picture
    return converted if converted is not None else picture


def _ratio(rows: int, columns: int, samples: int, compressed: int) -> float:
    return round(rows * columns * samples / max(compressed, 1), 2)


def _pad_even(pixels: bytes) -> bytes:
    # PS3.5 8.1.1: Pixel Data has an even length; an odd one gets one zero byte.
    return pixels + b"\x00" if len(pixels) % 2 else pixels
