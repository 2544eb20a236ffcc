"""JPEG that is not Baseline is decoded and re-encoded as Baseline, or kept raw."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from pacsbridge.media.stills import Still
from tests.unit import imagegen as gen
from tests.unit.imagegen import LoadStill, require_tool

PICTURE = gen.gradient(64, 48)
# A horizontal ramp over the whole range of 12 and 16 bits, for the deep JPEGs.
RAMP = np.tile(np.linspace(0, 1, 64), (48, 1))


def _pixels(still: Still) -> np.ndarray:
    return gen.decoded(
        still.pixel_data, still.rows, still.columns, still.samples_per_pixel
    )


def _mean_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(int) - expected.astype(int)).mean())


def _assert_reencoded_baseline(still: Still) -> None:
    assert not still.passed_through
    assert still.transfer_syntax == JPEGBaseline8Bit
    assert gen.sof_marker(still.pixel_data) == 0xC0
    assert still.photometric_interpretation == "YBR_FULL_422"
    assert still.samples_per_pixel == 3


@pytest.mark.parametrize("switch", ["-progressive", "-arithmetic"])
def test_progressive_and_arithmetic_jpeg_become_baseline(
    load: LoadStill, switch: str
) -> None:
    require_tool("cjpeg")
    source = gen.cjpeg(PICTURE, "-quality", "95", switch)
    assert gen.sof_marker(source) != 0xC0

    still = load(source)

    _assert_reencoded_baseline(still)
    assert _mean_error(_pixels(still), PICTURE) < 4
    assert still.lossy_methods == ("ISO_10918_1", "ISO_10918_1")


def test_pillow_progressive_jpeg_becomes_baseline(load: LoadStill) -> None:
    still = load(gen.jpeg_bytes(PICTURE, progressive=True))

    _assert_reencoded_baseline(still)
    assert _mean_error(_pixels(still), PICTURE) < 4


def test_cmyk_jpeg_becomes_ybr_full_422_with_its_colours(load: LoadStill) -> None:
    cmyk = gen.jpeg_bytes(Image.fromarray(PICTURE).convert("CMYK"))

    still = load(cmyk)

    _assert_reencoded_baseline(still)
    assert _mean_error(_pixels(still), PICTURE) < 5


def test_ycck_jpeg_is_decoded_through_its_colour_transform(load: LoadStill) -> None:
    # Planes (v, 128, 128, no black) read as YCCK are a neutral grey ramp; read
    # as plain CMYK they would be strongly coloured.
    v = np.tile(np.linspace(20, 235, 64), (48, 1)).astype(np.uint8)
    flat, none = np.full_like(v, 127), np.zeros_like(v)
    planes = np.stack([255 - v, flat, flat, none], axis=-1)  # Pillow inverts CMYK
    cmyk = gen.jpeg_bytes(Image.fromarray(planes, "CMYK"))
    ycck = gen.set_adobe_transform(cmyk, 2)

    still = load(ycck)

    _assert_reencoded_baseline(still)
    rgb = _pixels(still).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() < 12  # grey, not coloured
    row = rgb[24, :, 1]
    assert abs(row[-1] - row[0]) > 150  # and still the ramp


@pytest.mark.parametrize(
    ("bits", "switches", "lossy_source"),
    [
        (12, ("+ee",), True),  # extended sequential, 12-bit (SOF1)
        (12, ("+e1", "+pl"), False),  # lossless, 12-bit (SOF3)
        (16, ("+el",), False),  # lossless, 16-bit (SOF3)
    ],
    ids=["12-bit-extended", "12-bit-lossless", "16-bit-lossless"],
)
@pytest.mark.parametrize("quality", [90, "lossless"])
def test_deep_jpeg_is_decoded_and_scaled_to_8_bits(
    load: LoadStill,
    bits: int,
    switches: tuple[str, ...],
    lossy_source: bool,
    quality: int | str,
) -> None:
    require_tool("dcmcjpeg")
    source = gen.dcmtk_jpeg((RAMP * (2**bits - 1)).round(), bits, *switches)
    assert gen.sof_marker(source) in (0xC1, 0xC3)

    still = load(source, quality=quality)

    expected = np.repeat((RAMP * 255).round()[..., None], 3, axis=2)
    assert _mean_error(_pixels(still), expected) < 3
    assert still.source_format == "JPEG"
    methods = ("ISO_10918_1",) if lossy_source else ()
    if quality == "lossless":
        assert still.transfer_syntax == ExplicitVRLittleEndian
        assert still.lossy_methods == methods
    else:
        _assert_reencoded_baseline(still)
        assert still.lossy_methods == (*methods, "ISO_10918_1")


def test_lossless_rgb_jpeg_stays_exact_when_stored_lossless(
    load: LoadStill,
) -> None:
    require_tool("dcmcjpeg")
    source = gen.dcmtk_jpeg(PICTURE, 8, "+e1")
    assert gen.sof_marker(source) == 0xC3

    still = load(source, quality="lossless")

    assert still.photometric_interpretation == "RGB"
    assert not still.lossy
    assert np.array_equal(_pixels(still), PICTURE)


def test_lossless_rgb_jpeg_is_reencoded_as_baseline(load: LoadStill) -> None:
    require_tool("dcmcjpeg")

    still = load(gen.dcmtk_jpeg(PICTURE, 8, "+e1"))

    _assert_reencoded_baseline(still)
    assert still.lossy_methods == ("ISO_10918_1",)
    assert _mean_error(_pixels(still), PICTURE) < 4


def test_reencoded_jpeg_has_the_tables_of_the_configured_quality(
    load: LoadStill,
) -> None:
    progressive = gen.jpeg_bytes(PICTURE, progressive=True)
    with Image.open(io.BytesIO(progressive)) as im:
        decoded = im.convert("RGB")

    for quality in (35, 90):
        still = load(progressive, quality=quality)
        expected = gen.jpeg_bytes(decoded, quality=quality)
        assert gen.quantization_tables(still.pixel_data) == (
            gen.quantization_tables(expected)
        )
