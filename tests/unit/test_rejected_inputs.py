"""Bad input is refused with a message that names the file and what is wrong."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from pacsbridge.config import ImageSettings
from pacsbridge.errors import InputRejected
from pacsbridge.media import decoders
from pacsbridge.media.stills import load_still
from tests.unit import imagegen as gen

PICTURE = gen.gradient(64, 48)
SETTINGS = ImageSettings()


def _about(path: Path, problem: str) -> str:
    """The pattern of an InputRejected message: the file, then the problem."""
    return re.escape(str(path)) + ": " + problem


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "empty.jpg", b"")

    with pytest.raises(InputRejected, match=_about(path, "is empty")):
        load_still(path, SETTINGS)


def test_jpeg_cut_in_its_scan_is_rejected(tmp_path: Path) -> None:
    data = gen.jpeg_bytes(PICTURE)
    path = gen.write(tmp_path / "cut.jpg", data[: len(data) * 2 // 3])

    with pytest.raises(InputRejected, match=_about(path, "is not a readable JPEG.*")):
        load_still(path, SETTINGS)


def test_progressive_jpeg_cut_in_a_scan_is_rejected(tmp_path: Path) -> None:
    data = gen.jpeg_bytes(PICTURE, progressive=True)
    path = gen.write(tmp_path / "cut.jpg", data[: len(data) // 2])

    with pytest.raises(InputRejected, match=_about(path, ".*truncated")):
        load_still(path, SETTINGS)


def test_png_cut_in_its_pixels_is_rejected(tmp_path: Path) -> None:
    data = gen.encoded(PICTURE, "PNG")
    path = gen.write(tmp_path / "cut.png", data[: len(data) // 2])

    with pytest.raises(InputRejected, match=_about(path, "cannot be decoded")):
        load_still(path, SETTINGS)


def test_text_file_is_rejected(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "notes.jpg", b"Wound on the left heel, 2 cm.\n")

    with pytest.raises(InputRejected, match=_about(path, "is not an image format")):
        load_still(path, SETTINGS)


def test_soi_followed_by_rubbish_is_rejected(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "rubbish.jpg", b"\xff\xd8" + b"rubbish" * 10)

    with pytest.raises(InputRejected, match=_about(path, "is not a readable JPEG")):
        load_still(path, SETTINGS)


def test_folder_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "photos.jpg"
    path.mkdir()

    with pytest.raises(InputRejected, match=_about(path, "is a folder")):
        load_still(path, SETTINGS)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "gone.jpg"

    with pytest.raises(InputRejected, match=_about(path, r"cannot be read \(.+\)")):
        load_still(path, SETTINGS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_file_without_read_permission_is_rejected(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "secret.jpg", gen.jpeg_bytes(PICTURE))
    path.chmod(0)

    with pytest.raises(InputRejected, match=_about(path, "cannot be read")):
        load_still(path, SETTINGS)


def test_read_error_is_rejected_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs as root too, where chmod cannot make a file unreadable.
    path = gen.write(tmp_path / "secret.jpg", gen.jpeg_bytes(PICTURE))

    def denied(name: object, *args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(name))

    monkeypatch.setattr(os, "open", denied)

    with pytest.raises(
        InputRejected, match=_about(path, r"cannot be read \(Permission denied\)")
    ):
        load_still(path, SETTINGS)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel is decoded."""

    def refuse(*args: object) -> Image.Image:
        raise AssertionError("pixels were decoded before the size was checked")

    monkeypatch.setattr(decoders, "load_pixels", refuse)


@pytest.mark.usefixtures("no_decoding")
def test_png_bomb_is_rejected_before_decoding(tmp_path: Path) -> None:
    bomb = gen.png_with_size(gen.encoded(PICTURE, "PNG"), 50_000, 50_000)
    path = gen.write(tmp_path / "bomb.png", bomb)

    with pytest.raises(
        InputRejected,
        match=_about(path, r"has 50000x50000 pixels, more than image\.max_pixels"),
    ):
        load_still(path, ImageSettings(max_pixels=100_000_000))


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_bomb_is_rejected_before_decoding(
    tmp_path: Path, progressive: bool
) -> None:
    data = gen.jpeg_bytes(PICTURE, progressive=progressive)
    path = gen.write(tmp_path / "bomb.jpg", gen.set_frame_size(data, 60_000, 40_000))

    with pytest.raises(InputRejected, match=_about(path, r"has 60000x40000 pixels")):
        load_still(path, ImageSettings(max_pixels=100_000_000))


def test_max_pixels_is_the_configured_limit(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "photo.png", gen.encoded(PICTURE, "PNG"))

    assert load_still(path, ImageSettings(max_pixels=64 * 48)).rows == 48
    with pytest.raises(InputRejected, match=r"\(3071\) allows"):
        load_still(path, ImageSettings(max_pixels=64 * 48 - 1))


GARBAGE_EXIF = b"Exif\x00\x00MM\x00*\xff\xff\xff\xf0" + bytes(range(256)) * 2
# Pillow warns while it opens such a file, as it would in production, where
# warnings are not errors; the file must load all the same.
PILLOW_EXIF_WARNING = "ignore:Corrupt EXIF data:UserWarning"


@pytest.mark.filterwarnings(PILLOW_EXIF_WARNING)
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_with_garbage_exif_loads_upright(
    tmp_path: Path, progressive: bool
) -> None:
    upright = gen.quadrants(64, 48)
    data = gen.insert_after_app0(
        gen.jpeg_bytes(upright, progressive=progressive),
        gen.app_segment(0xE1, GARBAGE_EXIF),
    )
    path = gen.write(tmp_path / "garbled.jpg", data)

    still = load_still(path, SETTINGS)

    assert still.passed_through is not progressive
    assert (still.columns, still.rows) == (64, 48)
    pixels = gen.decoded(still.pixel_data, still.rows, still.columns, 3)
    assert gen.quadrant_names(pixels) == {p: p for p in gen.QUADRANT_COLOURS}
    assert GARBAGE_EXIF not in still.pixel_data


@pytest.mark.filterwarnings(PILLOW_EXIF_WARNING)
def test_png_with_garbage_exif_loads(tmp_path: Path) -> None:
    data = gen.encoded(PICTURE, "PNG", exif=GARBAGE_EXIF[6:])
    path = gen.write(tmp_path / "garbled.png", data)

    still = load_still(path, ImageSettings(quality="lossless"))

    assert still.pixel_data == PICTURE.tobytes()


def test_postscript_is_refused_without_running_ghostscript(tmp_path: Path) -> None:
    # An EPS that would never end if Ghostscript ran it.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"
    path = gen.write(tmp_path / "photo.jpg", eps)

    with pytest.raises(InputRejected, match=_about(path, "is not an image format")):
        load_still(path, SETTINGS)


@pytest.mark.parametrize("kind", ["ICO", "PCX", "TGA", "PPM"])
def test_formats_no_camera_writes_are_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"picture.{kind.lower()}"
    Image.fromarray(PICTURE).save(path, kind)

    with pytest.raises(InputRejected, match=_about(path, "is not an image format")):
        load_still(path, SETTINGS)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)

    with pytest.raises(InputRejected, match=_about(path, "is not a regular file")):
        load_still(path, SETTINGS)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "big.jpg", gen.jpeg_bytes(PICTURE))
    limit = path.stat().st_size - 1

    with pytest.raises(InputRejected, match=_about(path, r".* image\.max_file_size")):
        load_still(path, ImageSettings(max_file_size=limit))


def test_a_side_longer_than_dicom_allows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    Image.new("RGB", (70000, 1)).save(path)

    with pytest.raises(InputRejected, match=_about(path, r"is 70000x1 pixels; a side")):
        load_still(path, ImageSettings(quality="lossless"))


@pytest.mark.parametrize("name", ["badheif.heic", "badtif.tif"])
def test_inputs_that_once_crashed_a_decoder_are_rejected(name: str) -> None:
    path = Path(__file__).parents[1] / "data" / "damaged" / name

    with pytest.raises(InputRejected, match=re.escape(str(path))):
        load_still(path, SETTINGS)


def test_a_jpeg_with_two_frame_headers_is_rejected(tmp_path: Path) -> None:
    data = gen.jpeg_bytes(PICTURE)
    sof = data.index(b"\xff\xc0")
    length = int.from_bytes(data[sof + 2 : sof + 4], "big")
    doubled = (
        data[: sof + 2 + length]
        + data[sof : sof + 2 + length]
        + data[sof + 2 + length :]
    )
    path = gen.write(tmp_path / "twice.jpg", doubled)

    with pytest.raises(
        InputRejected,
        match=_about(path, "is not a readable JPEG: it has two frame headers"),
    ):
        load_still(path, SETTINGS)
