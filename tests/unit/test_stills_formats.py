"""PNG, TIFF, BMP, WebP, GIF and HEIC become baseline JPEG, or raw RGB if lossless."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from pacsbridge.media.stills import Still
from tests.unit import imagegen as gen
from tests.unit.imagegen import LoadStill

PICTURE = gen.gradient(64, 48)
RED, WHITE = (200, 30, 30), (255, 255, 255)


def _pixels(still: Still) -> np.ndarray:
    return gen.decoded(
        still.pixel_data, still.rows, still.columns, still.samples_per_pixel
    )


def _mean_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(int) - expected.astype(int)).mean())


def _animated_gif() -> bytes:
    first = Image.fromarray(PICTURE).quantize(64)
    second = Image.new("RGB", (64, 48), (0, 0, 255)).quantize(4)
    return gen.encoded(first, "GIF", save_all=True, append_images=[second])


def _first_frame(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# name, bytes, format Pillow names it, exact when stored lossless
FORMATS = {
    "png": (gen.encoded(PICTURE, "PNG"), "PNG", True),
    "tiff": (gen.encoded(PICTURE, "TIFF", compression="tiff_lzw"), "TIFF", True),
    "bmp": (gen.encoded(PICTURE, "BMP"), "BMP", True),
    "webp": (gen.encoded(PICTURE, "WEBP", lossless=True), "WEBP", True),
    "gif": (_animated_gif(), "GIF", True),
    "heic": (gen.encoded(PICTURE, "HEIF", quality=90), "HEIF", False),
}


def _expected(name: str, data: bytes) -> np.ndarray:
    return _first_frame(data) if name == "gif" else PICTURE


@pytest.mark.parametrize("name", FORMATS)
def test_image_becomes_baseline_jpeg_at_the_configured_quality(
    load: LoadStill, name: str
) -> None:
    data, source_format, _ = FORMATS[name]

    still = load(data, name=f"photo.{name}", quality=80)

    assert not still.passed_through
    assert still.transfer_syntax == JPEGBaseline8Bit
    assert gen.sof_marker(still.pixel_data) == 0xC0
    assert (still.photometric_interpretation, still.samples_per_pixel) == (
        "YBR_FULL_422",
        3,
    )
    assert (still.rows, still.columns) == (48, 64)
    assert still.source_format == source_format
    reference = gen.jpeg_bytes(_expected(name, data), quality=80)
    assert gen.quantization_tables(still.pixel_data) == (
        gen.quantization_tables(reference)
    )
    assert _mean_error(_pixels(still), _expected(name, data)) < 8


@pytest.mark.parametrize("name", FORMATS)
def test_image_is_stored_as_raw_rgb_when_lossless(load: LoadStill, name: str) -> None:
    data, _, exact = FORMATS[name]

    still = load(data, name=f"photo.{name}", quality="lossless")

    assert still.transfer_syntax == ExplicitVRLittleEndian
    assert (still.photometric_interpretation, still.samples_per_pixel) == ("RGB", 3)
    assert len(still.pixel_data) == 64 * 48 * 3
    if exact:
        assert np.array_equal(_pixels(still), _expected(name, data))
    else:
        assert _mean_error(_pixels(still), PICTURE) < 6


def test_gif_gives_its_first_frame(load: LoadStill) -> None:
    still = load(_animated_gif(), name="clip.gif", quality="lossless")

    assert _mean_error(_pixels(still), PICTURE) < 12  # 64 colours of the ramp
    assert not (_pixels(still)[..., 2] > 250).all()  # not the blue second frame


def test_transparent_png_is_shown_on_white(load: LoadStill) -> None:
    rgba = np.zeros((48, 64, 4), np.uint8)  # transparent black everywhere...
    rgba[:, :32] = (*RED, 255)  # ...but an opaque red left half
    rgba[:, 48:] = (0, 0, 0, 128)  # and a half-transparent black strip

    pixels = _pixels(load(gen.encoded(rgba, "PNG"), quality="lossless"))

    assert (pixels[:, :32] == RED).all()
    assert (pixels[:, 32:48] == WHITE).all()
    assert np.abs(pixels[:, 48:].astype(int) - 127).max() <= 1


def test_grey_png_with_alpha_is_shown_on_white(load: LoadStill) -> None:
    la = np.zeros((48, 64, 2), np.uint8)
    la[:, :32] = (60, 255)

    pixels = _pixels(load(gen.png_bytes(la, colour_type=4, bit_depth=8), quality=100))

    assert np.abs(pixels[:, :24].astype(int) - 60).max() <= 3
    assert (pixels[:, 40:] >= 252).all()


def test_palette_png_keeps_its_colours(load: LoadStill) -> None:
    palette = Image.fromarray(PICTURE).quantize(32)
    expected = np.asarray(palette.convert("RGB"))

    still = load(gen.encoded(palette, "PNG"), quality="lossless")

    assert np.array_equal(_pixels(still), expected)


def test_palette_png_with_transparent_index_is_shown_on_white(
    load: LoadStill,
) -> None:
    palette = Image.new("P", (64, 48), 0)
    palette.putpalette([*RED, 0, 0, 0])
    palette.paste(1, (32, 0, 64, 48))  # right half: index 1, black, transparent
    data = gen.encoded(palette, "PNG", transparency=1)

    pixels = _pixels(load(data, quality="lossless"))

    assert (pixels[:, :32] == RED).all()
    assert (pixels[:, 32:] == WHITE).all()


@pytest.mark.parametrize("colour_type", [0, 2], ids=["grey", "rgb"])
def test_16_bit_png_is_scaled_not_clipped(load: LoadStill, colour_type: int) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64), (48, 1)).round()
    samples = ramp if colour_type == 0 else np.stack([ramp] * 3, axis=-1)
    data = gen.png_bytes(samples, colour_type=colour_type, bit_depth=16)

    row = _pixels(load(data, quality="lossless"))[24, :, 0].astype(int)

    expected = np.linspace(0, 255, 64)
    assert np.abs(row - expected).max() <= 1.5
    assert len(set(row.tolist())) > 60  # a gradient still, not one flat white


def test_embedded_icc_profile_is_converted_to_srgb(load: LoadStill) -> None:
    red = np.full((48, 64, 3), RED, np.uint8)
    plain = gen.encoded(red, "PNG")
    profiled = gen.encoded(red, "PNG", icc_profile=gen.swapped_primaries_profile())

    as_srgb = _pixels(load(plain, quality="lossless"))[24, 32].astype(int)
    converted = _pixels(load(profiled, quality="lossless"))[24, 32].astype(int)

    assert tuple(as_srgb) == RED
    assert converted[2] > converted[0] + 100  # the profile's "red" is blue


def test_icc_profile_of_a_reencoded_jpeg_is_converted(load: LoadStill) -> None:
    red = np.full((48, 64, 3), RED, np.uint8)
    profile = gen.swapped_primaries_profile()
    progressive = gen.jpeg_bytes(red, progressive=True, icc_profile=profile)

    still = load(progressive)

    centre = _pixels(still)[24, 32].astype(int)
    assert centre[2] > centre[0] + 100
    assert still.icc_profile is None  # the pixels are sRGB now


def test_unusable_icc_profile_leaves_the_pixels_as_they_are(
    load: LoadStill,
) -> None:
    data = gen.encoded(PICTURE, "PNG", icc_profile=b"not a colour profile" * 8)

    still = load(data, quality="lossless")

    assert np.array_equal(_pixels(still), PICTURE)


@pytest.mark.parametrize(
    ("source", "quality", "methods"),
    [
        ("jpeg", 90, ("ISO_10918_1",)),
        ("jpeg", "lossless", ("ISO_10918_1",)),
        ("png", 90, ("ISO_10918_1",)),
        ("png", "lossless", ()),
        ("heic", 90, ("ISO_23008_2", "ISO_10918_1")),
        ("heic", "lossless", ("ISO_23008_2",)),
    ],
)
def test_lossy_compression_is_reported_truthfully(
    load: LoadStill, source: str, quality: int | str, methods: tuple[str, ...]
) -> None:
    data = {
        "jpeg": gen.jpeg_bytes(PICTURE),
        "png": FORMATS["png"][0],
        "heic": FORMATS["heic"][0],
    }[source]

    still = load(data, name=f"photo.{source}", quality=quality)

    assert still.lossy_methods == methods
    assert still.lossy is bool(methods)
    assert len(still.lossy_ratios) == len(methods)
    assert all(ratio > 1 for ratio in still.lossy_ratios)


@pytest.mark.parametrize(
    ("options", "lossy"),
    [({"lossless": True}, False), ({"quality": 70}, True)],
    ids=["vp8l", "vp8"],
)
def test_webp_stored_lossless_says_whether_its_source_was_lossy(
    load: LoadStill, options: dict[str, object], lossy: bool
) -> None:
    still = load(gen.encoded(PICTURE, "WEBP", **options), quality="lossless")

    assert still.lossy is lossy
    assert still.lossy_methods == ()  # DICOM has no term for VP8 or VP8L


def test_jpeg_compressed_tiff_counts_as_lossy_jpeg(load: LoadStill) -> None:
    data = gen.encoded(PICTURE, "TIFF", compression="jpeg")

    still = load(data, name="scan.tif", quality="lossless")

    assert still.lossy
    assert still.lossy_methods == ("ISO_10918_1",)


def test_odd_length_raw_pixels_are_padded_to_even_length(load: LoadStill) -> None:
    tiny = PICTURE[:3, :3]

    still = load(gen.encoded(tiny, "PNG"), quality="lossless")

    assert len(still.pixel_data) == 28
    assert still.pixel_data == tiny.tobytes() + b"\x00"
    assert (still.rows, still.columns) == (3, 3)


def _comment_carriers() -> dict[str, bytes]:
    picture = Image.fromarray(PICTURE)
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "SECRET-PNG")
    return {
        "progressive.jpg": gen.encoded(
            picture, "JPEG", progressive=True, comment=b"SECRET-JPEG"
        ),
        "note.gif": gen.encoded(picture.quantize(64), "GIF", comment=b"SECRET-GIF"),
        "note.png": gen.encoded(picture, "PNG", pnginfo=info),
    }


@pytest.mark.parametrize("name", ["progressive.jpg", "note.gif", "note.png"])
@pytest.mark.parametrize("quality", [90, "lossless"])
def test_comments_of_reencoded_pictures_do_not_reach_the_pixel_data(
    load: LoadStill, name: str, quality: int | str
) -> None:
    still = load(_comment_carriers()[name], name=name, quality=quality)

    assert b"SECRET" not in still.pixel_data
