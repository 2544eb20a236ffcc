"""EXIF Orientation is applied: every picture reaches the PACS upright."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pacsbridge.config import ImageSettings
from pacsbridge.media import stills
from pacsbridge.media.stills import Still, load_still
from tests.unit import imagegen as gen
from tests.unit.imagegen import LoadStill, require_tool

ORIENTATIONS = range(1, 9)
UPRIGHT = {place: place for place in gen.QUADRANT_COLOURS}


def _pixels(still: Still) -> np.ndarray:
    return gen.decoded(
        still.pixel_data, still.rows, still.columns, still.samples_per_pixel
    )


def _photo_as_stored(width: int, height: int, orientation: int) -> np.ndarray:
    return gen.stored_for_orientation(gen.quadrants(width, height), orientation)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_jpeg_is_turned_upright_losslessly_on_whole_blocks(
    load: LoadStill, orientation: int
) -> None:
    require_tool("jpegtran")
    stored = _photo_as_stored(64, 48, orientation)  # whole 16x16 MCUs
    data = gen.jpeg_bytes(stored, exif=gen.private_exif(orientation))

    still = load(data)

    assert still.passed_through
    assert gen.sof_marker(still.pixel_data) == 0xC0
    assert (still.columns, still.rows) == (64, 48)
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT
    # No EXIF left that a viewer could apply a second time, or that tells where.
    assert 0xE1 not in [m for m, _ in gen.segments(still.pixel_data)]
    assert [s for s in gen.PRIVATE_STRINGS if s in still.pixel_data] == []


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("mode", ["4:4:4", "grey"])
def test_rotated_jpeg_on_whole_8x8_blocks_is_turned_losslessly(
    load: LoadStill, orientation: int, mode: str
) -> None:
    require_tool("jpegtran")
    stored = Image.fromarray(_photo_as_stored(40, 24, orientation))
    exif = gen.exif_with_orientation(orientation)
    if mode == "grey":
        data = gen.jpeg_bytes(stored.convert("L"), exif=exif)
    else:
        data = gen.jpeg_bytes(stored, subsampling="4:4:4", exif=exif)

    still = load(data)

    assert still.passed_through
    assert (still.columns, still.rows) == (40, 24)
    if mode == "4:4:4":
        assert gen.quadrant_names(_pixels(still)) == UPRIGHT
    else:
        grey = np.asarray(Image.fromarray(gen.quadrants(40, 24)).convert("L"))
        diff = np.abs(_pixels(still)[..., 0].astype(int) - grey).mean()
        assert diff < 4


@pytest.mark.parametrize("orientation", [2, 6])
def test_rotated_rgb_coded_jpeg_stays_rgb(load: LoadStill, orientation: int) -> None:
    require_tool("cjpeg")
    require_tool("jpegtran")
    stored = _photo_as_stored(64, 48, orientation)
    exif = b"Exif\x00\x00" + gen.exif_with_orientation(orientation)
    data = gen.insert_after_soi(
        gen.cjpeg(stored, "-rgb", "-quality", "95"), gen.app_segment(0xE1, exif)
    )

    still = load(data)

    assert still.passed_through
    assert still.photometric_interpretation == "RGB"
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_heic_is_upright(load: LoadStill, orientation: int) -> None:
    stored = _photo_as_stored(64, 48, orientation)
    exif = gen.exif_with_orientation(orientation)
    data = gen.encoded(stored, "HEIF", exif=exif, quality=90)

    still = load(data, name="photo.heic", quality="lossless")

    assert (still.columns, still.rows) == (64, 48)
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_jpeg_with_partial_blocks_is_reencoded_upright(
    load: LoadStill, orientation: int
) -> None:
    stored = _photo_as_stored(33, 17, orientation)
    data = gen.jpeg_bytes(stored, exif=gen.exif_with_orientation(orientation))

    still = load(data)

    # Only the transpose (5) keeps partial edge blocks whole (jpegtran -perfect).
    assert still.passed_through is (orientation in (1, 5))
    assert gen.sof_marker(still.pixel_data) == 0xC0
    assert (still.columns, still.rows) == (33, 17)
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


def test_rotated_jpeg_is_reencoded_upright_without_jpegtran(
    load: LoadStill, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _photo_as_stored(64, 48, 6)
    data = gen.jpeg_bytes(stored, exif=gen.exif_with_orientation(6))
    monkeypatch.setattr(stills.shutil, "which", lambda name: None)

    still = load(data)

    assert not still.passed_through
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_jpeg_stored_lossless_is_upright(
    load: LoadStill, orientation: int
) -> None:
    stored = _photo_as_stored(33, 17, orientation)
    data = gen.jpeg_bytes(stored, exif=gen.exif_with_orientation(orientation))

    still = load(data, quality="lossless")

    assert (still.columns, still.rows) == (33, 17)
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_rotated_png_is_upright(load: LoadStill, orientation: int) -> None:
    upright = gen.quadrants(33, 17)
    stored = gen.stored_for_orientation(upright, orientation)
    data = gen.encoded(stored, "PNG", exif=gen.exif_with_orientation(orientation))

    still = load(data, name="photo.png", quality="lossless")

    assert np.array_equal(_pixels(still), upright)


@pytest.mark.parametrize("orientation", [6, 7])
def test_rotated_progressive_jpeg_is_upright(load: LoadStill, orientation: int) -> None:
    stored = _photo_as_stored(64, 48, orientation)
    data = gen.jpeg_bytes(
        stored, progressive=True, exif=gen.exif_with_orientation(orientation)
    )

    still = load(data)

    assert not still.passed_through
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


@pytest.mark.parametrize("value", [0, 9, 300])
def test_orientation_out_of_range_is_taken_as_upright(
    load: LoadStill, value: int
) -> None:
    upright = gen.quadrants(64, 48)

    still = load(gen.jpeg_bytes(upright, exif=gen.exif_with_orientation(value)))

    assert still.passed_through
    assert gen.quadrant_names(_pixels(still)) == UPRIGHT


# --- Real phone photos: Landscape_N and Portrait_N for every orientation N ---


def _thumbnail(still: Still) -> np.ndarray:
    with Image.open(io.BytesIO(still.pixel_data)) as im:
        im.draft("RGB", (im.width // 8, im.height // 8))
        landscape = im.width > im.height
        return np.asarray(im.convert("RGB").resize((60, 40) if landscape else (40, 60)))


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
@pytest.mark.parametrize("orientation", range(9))
def test_real_photo_is_upright_and_shows_what_orientation_1_shows(
    photos: Path, kind: str, orientation: int
) -> None:
    settings = ImageSettings()
    reference = _thumbnail(load_still(photos / f"{kind}_1.jpg", settings))

    still = load_still(photos / f"{kind}_{orientation}.jpg", settings)

    if kind == "Landscape":
        assert still.columns > still.rows
    else:
        assert still.rows > still.columns
    thumbnail = _thumbnail(still)
    assert _difference(thumbnail, reference) < 4
    assert _difference(thumbnail[:, ::-1], reference) > 20  # the check can tell
