"""Baseline JPEG goes to the PACS as it came, less what says where and who."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from pacsbridge.config import ImageSettings
from pacsbridge.errors import InputRejected
from pacsbridge.media import jpeg
from pacsbridge.media.stills import decode_to_uncompressed, load_still
from tests.unit import imagegen as gen
from tests.unit.imagegen import LoadStill, require_tool

PICTURE = gen.gradient(64, 48)


def test_baseline_jpeg_is_passed_through_bit_for_bit(load: LoadStill) -> None:
    clean = gen.jpeg_bytes(PICTURE)

    still = load(gen.with_private_metadata(clean))

    assert still.passed_through
    assert still.transfer_syntax == JPEGBaseline8Bit
    assert still.pixel_data == clean
    assert (still.rows, still.columns, still.samples_per_pixel) == (48, 64, 3)
    assert still.source_format == "JPEG"


def test_location_owner_and_device_never_reach_the_pixel_data(
    load: LoadStill,
) -> None:
    still = load(gen.with_private_metadata(gen.jpeg_bytes(PICTURE)))

    leaked = [s for s in gen.PRIVATE_STRINGS if s in still.pixel_data]
    assert leaked == []
    assert [m for m, _ in gen.segments(still.pixel_data) if m in (0xE1, 0xED)] == []


def test_metadata_written_by_exiftool_is_dropped(
    load: LoadStill, tmp_path: Path
) -> None:
    exiftool = gen.require_tool("exiftool")
    clean = gen.jpeg_bytes(PICTURE)
    photo = gen.write(tmp_path / "phone.jpg", clean)
    subprocess.run(
        [
            exiftool,
            "-q",
            "-overwrite_original",
            "-GPSLatitude=47.3769",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=8.5417",
            "-GPSLongitudeRef=E",
            "-GPSAreaInformation=SECRET-HOME-ADDRESS",
            "-Artist=JANE-DOE-ARTIST",
            "-XMP-dc:Creator=XMP-CREATOR-JANE",
            "-IPTC:By-line=IPTC-BYLINE-JANE",
            "-Comment=COMMENT-JANE",
            str(photo),
        ],
        check=True,
    )
    tagged = photo.read_bytes()
    assert b"SECRET-HOME-ADDRESS" in tagged and b"XMP-CREATOR-JANE" in tagged

    still = load(tagged)

    assert still.pixel_data == clean
    assert [s for s in gen.PRIVATE_STRINGS if s in still.pixel_data] == []


def test_icc_profile_and_adobe_segment_are_kept(load: LoadStill) -> None:
    require_tool("cjpeg")
    profile = gen.swapped_primaries_profile()
    rgb = gen.cjpeg(PICTURE, "-rgb")
    assert 0xEE in [m for m, _ in gen.segments(rgb)]  # cjpeg -rgb writes APP14
    clean = gen.insert_after_soi(
        rgb, gen.app_segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + profile)
    )

    still = load(gen.with_private_metadata(clean))

    assert still.pixel_data == clean
    assert still.icc_profile == profile
    kept = [m for m, _ in gen.segments(still.pixel_data) if 0xE0 <= m <= 0xEF]
    assert kept == [0xE2, 0xEE]


def test_jpeg_without_profile_has_none(load: LoadStill) -> None:
    assert load(gen.jpeg_bytes(PICTURE)).icc_profile is None


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_ycbcr_jpeg_is_ybr_full_422_at_every_subsampling(
    load: LoadStill, subsampling: str
) -> None:
    still = load(gen.jpeg_bytes(PICTURE, subsampling=subsampling))

    assert still.passed_through
    assert still.photometric_interpretation == "YBR_FULL_422"


@pytest.mark.parametrize("sample", ["2x2,1x1,1x1", "2x1,1x1,1x1", "1x1,1x1,1x1"])
def test_cjpeg_ycbcr_jpeg_is_ybr_full_422(load: LoadStill, sample: str) -> None:
    require_tool("cjpeg")

    still = load(gen.cjpeg(PICTURE, "-sample", sample))

    assert still.passed_through
    assert still.photometric_interpretation == "YBR_FULL_422"


def test_jpeg_coded_as_rgb_is_passed_through_as_rgb(load: LoadStill) -> None:
    require_tool("cjpeg")

    still = load(gen.cjpeg(PICTURE, "-rgb"))

    assert still.passed_through
    assert still.photometric_interpretation == "RGB"
    assert _close(gen.decoded(still.pixel_data, 48, 64, 3), PICTURE, 6)


def test_rgb_component_ids_without_adobe_segment_mean_rgb(load: LoadStill) -> None:
    require_tool("cjpeg")
    ids_only = gen.remove_segments(gen.cjpeg(PICTURE, "-rgb"), 0xEE)

    assert load(ids_only).photometric_interpretation == "RGB"


def test_adobe_transform_0_means_rgb_whatever_the_component_ids(
    load: LoadStill,
) -> None:
    require_tool("cjpeg")
    numbered = gen.set_component_ids(gen.cjpeg(PICTURE, "-rgb"), (1, 2, 3))

    still = load(numbered)

    assert still.photometric_interpretation == "RGB"
    assert _close(gen.decoded(still.pixel_data, 48, 64, 3), PICTURE, 6)


def test_grayscale_jpeg_is_monochrome2(load: LoadStill) -> None:
    gray = gen.jpeg_bytes(Image.fromarray(PICTURE).convert("L"))

    still = load(gray)

    assert still.passed_through
    assert still.photometric_interpretation == "MONOCHROME2"
    assert still.samples_per_pixel == 1


def test_jpeg_named_png_is_passed_through_by_its_content(load: LoadStill) -> None:
    clean = gen.jpeg_bytes(PICTURE)

    still = load(clean, name="camera.png")

    assert still.passed_through
    assert still.pixel_data == clean


def test_png_named_jpg_is_reencoded_by_its_content(load: LoadStill) -> None:
    still = load(gen.encoded(PICTURE, "PNG"), name="camera.jpg")

    assert not still.passed_through
    assert still.source_format == "PNG"
    assert gen.sof_marker(still.pixel_data) == 0xC0


def test_passed_through_jpeg_is_lossy_once_with_its_own_ratio(
    load: LoadStill,
) -> None:
    clean = gen.jpeg_bytes(PICTURE)

    still = load(gen.with_private_metadata(clean))

    assert still.lossy
    assert still.lossy_methods == ("ISO_10918_1",)
    (ratio,) = still.lossy_ratios
    assert ratio > 1
    assert ratio == pytest.approx(64 * 48 * 3 / len(clean), abs=0.01)


def test_jpeg_stored_lossless_is_decoded_but_stays_lossy(load: LoadStill) -> None:
    clean = gen.jpeg_bytes(PICTURE)

    still = load(clean, quality="lossless")

    assert not still.passed_through
    assert still.photometric_interpretation == "RGB"
    assert still.lossy_methods == ("ISO_10918_1",)
    with Image.open(io.BytesIO(clean)) as im:
        assert still.pixel_data == im.convert("RGB").tobytes()


def _close(actual: np.ndarray, expected: np.ndarray, tolerance: float) -> bool:
    return bool(np.abs(actual.astype(int) - expected.astype(int)).mean() < tolerance)


def test_multi_scan_baseline_jpeg_loses_metadata_between_its_scans(
    load: LoadStill, tmp_path: Path
) -> None:
    require_tool("cjpeg")
    clean = gen.sequential_scans(PICTURE, tmp_path)
    dirty = gen.insert_before_scan(
        gen.with_private_metadata(clean),
        1,
        gen.app_segment(0xE1, b"Exif\x00\x00" + gen.private_exif()),
        gen.app_segment(0xFE, b"COMMENT-JANE"),
    )

    still = load(dirty)

    assert still.passed_through
    assert still.pixel_data == clean
    assert [s for s in gen.PRIVATE_STRINGS if s in still.pixel_data] == []


@pytest.mark.parametrize(
    ("switches", "photometric"),
    [((), "YBR_FULL_422"), (("-rgb",), "RGB"), (("-grayscale",), "MONOCHROME2")],
)
def test_passed_through_jpeg_decodes_to_raw_pixels_for_a_picky_destination(
    load: LoadStill, switches: tuple[str, ...], photometric: str
) -> None:
    require_tool("cjpeg")
    still = load(gen.cjpeg(PICTURE, "-quality", "95", *switches))
    assert still.photometric_interpretation == photometric

    raw = decode_to_uncompressed(still)

    assert raw.transfer_syntax == ExplicitVRLittleEndian
    assert not raw.passed_through
    assert raw.lossy_methods == ("ISO_10918_1",)  # once lossy, always lossy
    samples = 1 if photometric == "MONOCHROME2" else 3
    assert raw.samples_per_pixel == samples
    assert raw.photometric_interpretation == ("MONOCHROME2" if samples == 1 else "RGB")
    assert len(raw.pixel_data) == 64 * 48 * samples
    pixels = gen.decoded(raw.pixel_data, 48, 64, samples)
    grey = np.asarray(Image.fromarray(PICTURE).convert("L"))
    expected = PICTURE if samples == 3 else np.repeat(grey[..., None], 3, axis=2)
    assert _close(pixels, expected, 4)


def test_a_checked_file_is_not_parsed_again_while_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = gen.write(tmp_path / "photo.jpg", gen.jpeg_bytes(PICTURE))
    first = load_still(path, ImageSettings())

    def refuse(data: bytes) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(jpeg, "parse", refuse)
    again = load_still(path, ImageSettings(), first.check)

    assert again.pixel_data == first.pixel_data


def test_a_file_changed_since_its_check_is_checked_again(tmp_path: Path) -> None:
    path = gen.write(tmp_path / "photo.jpg", gen.jpeg_bytes(PICTURE))
    first = load_still(path, ImageSettings())
    path.write_bytes(path.read_bytes()[:300])  # truncated after the check

    with pytest.raises(InputRejected, match=r"photo\.jpg: is not a readable JPEG"):
        load_still(path, ImageSettings(), first.check)


def test_a_broken_icc_profile_is_not_carried_over(load: LoadStill) -> None:
    broken = b"ICC_PROFILE\x00\x01\x01" + b"not a profile at all" * 20
    data = gen.insert_after_app0(gen.jpeg_bytes(PICTURE), gen.app_segment(0xE2, broken))

    still = load(data)

    assert still.passed_through
    assert still.icc_profile is None


def test_a_jpeg_without_huffman_tables_is_reencoded_not_passed(load: LoadStill) -> None:
    # Motion-JPEG frames leave the tables to the decoder's defaults.
    data = gen.remove_segments(gen.jpeg_bytes(PICTURE), 0xC4)

    still = load(data)

    assert not still.passed_through
    assert 0xC4 in [marker for marker, _ in gen.segments(still.pixel_data)]


def test_text_after_the_adobe_segment_is_not_carried(load: LoadStill) -> None:
    adobe = gen.adobe_segment(1)
    padded = gen.app_segment(0xEE, adobe[4:] + b"SMUGGLED-TEXT")
    data = gen.insert_after_app0(gen.jpeg_bytes(PICTURE), padded)

    still = load(data)

    assert still.passed_through
    assert b"SMUGGLED" not in still.pixel_data
    assert b"Adobe" in still.pixel_data
