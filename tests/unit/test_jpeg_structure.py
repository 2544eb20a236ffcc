"""Reading a JPEG's marker segments: baseline or not, colour model, metadata."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PIL import Image

from pacsbridge.media import jpeg
from tests.unit import imagegen as gen
from tests.unit.imagegen import require_tool

PICTURE = gen.gradient(64, 48)


def test_baseline_stream_tells_its_size_and_components() -> None:
    info = jpeg.parse(gen.jpeg_bytes(gen.gradient(33, 17), subsampling="4:2:0"))

    assert info.is_baseline
    assert (info.sof_marker, info.precision) == (0xC0, 8)
    assert (info.rows, info.columns) == (17, 33)
    assert [(c.h, c.v) for c in info.components] == [(2, 2), (1, 1), (1, 1)]


@pytest.mark.parametrize(
    ("switch", "sof"), [("-progressive", 0xC2), ("-arithmetic", 0xC9)]
)
def test_progressive_and_arithmetic_streams_are_not_baseline(
    switch: str, sof: int
) -> None:
    require_tool("cjpeg")
    info = jpeg.parse(gen.cjpeg(PICTURE, switch))

    assert info.sof_marker == sof
    assert not info.is_baseline


def test_cmyk_stream_is_not_baseline() -> None:
    cmyk = gen.jpeg_bytes(Image.fromarray(PICTURE).convert("CMYK"))

    assert len(jpeg.parse(cmyk).components) == 4
    assert not jpeg.parse(cmyk).is_baseline


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_ycbcr_is_ybr_full_422_whatever_the_subsampling(subsampling: str) -> None:
    info = jpeg.parse(gen.jpeg_bytes(PICTURE, subsampling=subsampling))

    assert info.photometric_interpretation == "YBR_FULL_422"


def test_component_ids_r_g_b_mean_rgb() -> None:
    require_tool("cjpeg")
    without_adobe = gen.remove_segments(gen.cjpeg(PICTURE, "-rgb"), 0xEE)
    info = jpeg.parse(without_adobe)

    assert [c.identifier for c in info.components] == [0x52, 0x47, 0x42]
    assert info.adobe_transform is None
    assert info.photometric_interpretation == "RGB"


def test_adobe_transform_decides_over_component_ids() -> None:
    rgb_by_adobe = gen.insert_after_soi(
        gen.jpeg_bytes(PICTURE, subsampling="4:4:4"), gen.adobe_segment(0)
    )
    ycc_by_adobe = gen.insert_after_soi(
        gen.set_component_ids(gen.jpeg_bytes(PICTURE), (0x52, 0x47, 0x42)),
        gen.adobe_segment(1),
    )

    assert jpeg.parse(rgb_by_adobe).photometric_interpretation == "RGB"
    assert jpeg.parse(ycc_by_adobe).photometric_interpretation == "YBR_FULL_422"


def test_grayscale_stream_is_monochrome2() -> None:
    info = jpeg.parse(gen.jpeg_bytes(Image.fromarray(PICTURE).convert("L")))

    assert info.photometric_interpretation == "MONOCHROME2"
    assert info.is_baseline


def test_icc_profile_chunks_are_joined_in_sequence_order() -> None:
    profile = gen.swapped_primaries_profile()
    half = len(profile) // 2
    second = gen.app_segment(0xE2, b"ICC_PROFILE\x00\x02\x02" + profile[half:])
    first = gen.app_segment(0xE2, b"ICC_PROFILE\x00\x01\x02" + profile[:half])
    data = gen.insert_after_app0(gen.jpeg_bytes(PICTURE), second, first)

    assert jpeg.parse(data).icc_profile(data) == profile


def test_stream_without_metadata_keeps_tables_and_scan_byte_for_byte() -> None:
    clean = gen.jpeg_bytes(PICTURE, icc_profile=gen.swapped_primaries_profile())
    dirty = gen.insert_after_app0(
        clean,
        gen.app_segment(0xE1, b"Exif\x00\x00" + gen.exif_with_orientation(1)),
        gen.app_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"),
        gen.app_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04IPTC-BYLINE"),
        gen.app_segment(0xE2, b"MPF\x00II*\x00MULTI-PICTURE"),
        gen.app_segment(0xE9, b"VENDOR-APP9"),
        gen.app_segment(0xFE, b"A COMMENT"),
    )

    assert jpeg.without_metadata(dirty, jpeg.parse(dirty)) == clean


def test_jfif_thumbnail_is_dropped_and_jfif_header_kept() -> None:
    clean = gen.jpeg_bytes(PICTURE)
    jfif = next(p for m, p in gen.segments(clean) if m == 0xE0)
    thumbnail = b"\x02\x02" + b"THUMBNAILRGB"  # 2x2 pixels, 3 bytes each
    with_thumbnail = gen.insert_after_soi(
        gen.remove_segments(clean, 0xE0), gen.app_segment(0xE0, jfif[:12] + thumbnail)
    )

    stripped = jpeg.without_metadata(with_thumbnail, jpeg.parse(with_thumbnail))

    assert stripped == clean
    assert b"THUMBNAILRGB" not in stripped


def test_data_after_the_end_of_image_is_dropped() -> None:
    clean = gen.jpeg_bytes(PICTURE)
    appended = clean + b"GAINMAP" + gen.jpeg_bytes(gen.gradient(8, 8))

    info = jpeg.parse(appended)

    assert info.end == len(clean)
    assert jpeg.without_metadata(appended, info) == clean


def test_restart_markers_inside_the_scan_are_not_its_end() -> None:
    require_tool("cjpeg")
    data = gen.cjpeg(PICTURE, "-restart", "1B")
    assert b"\xff\xd0" in data  # the test needs RST0 in the scan

    assert jpeg.parse(data).end == len(data)


def test_fill_bytes_before_a_marker_are_skipped() -> None:
    clean = gen.jpeg_bytes(PICTURE)
    padded = clean[:2] + b"\xff\xff" + clean[2:]  # 10918-1 B.1.1.2

    assert jpeg.parse(padded).rows == 48


def test_stream_not_starting_with_soi_is_refused() -> None:
    with pytest.raises(jpeg.JpegStructureError, match="SOI"):
        jpeg.parse(b"\x89PNG\r\n\x1a\n")


def test_stream_cut_in_its_scan_is_truncated() -> None:
    data = gen.jpeg_bytes(PICTURE)

    with pytest.raises(jpeg.JpegStructureError, match="truncated"):
        jpeg.parse(data[: len(data) // 2])


def test_stream_cut_in_a_marker_segment_is_truncated() -> None:
    data = gen.jpeg_bytes(PICTURE, icc_profile=gen.swapped_primaries_profile())

    with pytest.raises(jpeg.JpegStructureError, match="truncated"):
        jpeg.parse(data[:100])


def test_stream_without_frame_header_is_refused() -> None:
    data = gen.jpeg_bytes(PICTURE)
    without_sof = gen.remove_segments(data, 0xC0)

    with pytest.raises(jpeg.JpegStructureError, match="no frame header"):
        jpeg.parse(without_sof)


def test_frame_of_zero_rows_is_refused() -> None:
    data = gen.set_frame_size(gen.jpeg_bytes(PICTURE), 64, 0)

    with pytest.raises(jpeg.JpegStructureError, match="zero rows"):
        jpeg.parse(data)


def test_segment_length_below_two_is_refused() -> None:
    data = gen.jpeg_bytes(PICTURE)
    broken = data[:2] + b"\xff\xe1" + struct.pack(">H", 1) + data[2:]

    with pytest.raises(jpeg.JpegStructureError, match="truncated"):
        jpeg.parse(broken)


def test_metadata_between_scans_and_before_the_end_is_dropped(
    tmp_path: Path,
) -> None:
    require_tool("cjpeg")
    clean = gen.sequential_scans(PICTURE, tmp_path)
    assert gen.sof_marker(clean) == 0xC0 and clean.count(b"\xff\xda") == 3
    between = gen.insert_before_scan(
        clean,
        2,
        gen.app_segment(0xFE, b"COMMENT-JANE"),
        gen.app_segment(0xE1, b"Exif\x00\x00SECRET-HOME-ADDRESS"),
    )
    dirty = between[:-2] + gen.app_segment(0xFE, b"COMMENT-JANE") + between[-2:]

    stripped = jpeg.without_metadata(dirty, jpeg.parse(dirty))

    assert stripped == clean
