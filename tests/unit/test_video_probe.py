"""Videos are probed for what their stream really is, then passed through or not.

The inputs are made by the ffmpeg command line once per session (a second or less
of testsrc2 and a tone each, see tests/videogen.py), so what is asserted is what
ffmpeg was told to write.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import pytest

from pacsbridge.errors import InputRejected
from pacsbridge.media.video import (
    AudioTrack,
    audio_allowed,
    audio_problems,
    classify,
    probe,
)
from tests import videogen

H264_HIGH_41 = "1.2.840.10008.1.2.4.102"
HEVC_MAIN_51 = "1.2.840.10008.1.2.4.107"
HEVC_MAIN10_51 = "1.2.840.10008.1.2.4.108"


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    return videogen.videos(tmp_path_factory)


# What each kind is, and what becomes of it: (file, fields of VideoInfo, transfer
# syntax when it passes through, the reasons it does not, in order).
KINDS = {
    "H.264 High 1080p30": (
        "h264_high_1080p30.mp4",
        {"codec": "h264", "profile": "High", "level": 41, "width": 1920, "height": 1080,
         "frame_count": 30, "frame_rate": 30, "duration_seconds": 1.0},
        H264_HIGH_41, [],
    ),
    "H.264 Baseline": (
        "h264_baseline.mp4",
        {"profile": "Constrained Baseline", "frame_count": 30},
        None, [r"H\.264 Constrained Baseline profile is not High Profile"],
    ),
    "1080p60 labelled Level 4.1": (
        "h264_1080p60.mp4",
        {"level": 41, "frame_count": 60, "frame_rate": 60},
        None,
        [r"1920x1080 at 60 frames/s is outside Level 4\.1's resolutions and rates"],
    ),
    "4K30 H.264": (
        "h264_4k30.mp4",
        {"width": 3840, "height": 2160, "level": 51, "frame_count": 30},
        None,
        [r"H\.264 level 5\.1 is above 4\.1", r"3840x2160 is larger than Level 4\.1's"],
    ),
    "H.264 High 4:2:2": (
        "h264_422.mp4",
        {"profile": "High 4:2:2", "chroma": "4:2:2", "pixel_format": "yuv422p"},
        None, [r"H\.264 High 4:2:2 profile is not High Profile", r"4:2:2 chroma"],
    ),
    "H.264 full range": (
        "h264_full_range.mp4",
        {"profile": "High", "chroma": "4:2:0", "full_range": True},
        None, [r"full-range samples: YBR_PARTIAL_420 is limited range"],
    ),
    "H.264 576i": (
        "h264_576i.mp4",
        {"interlaced": True, "frame_count": 10, "frame_rate": 25},
        H264_HIGH_41, [],
    ),
    "HEVC Main": (
        "hevc_main.mp4",
        {"codec": "hevc", "profile": "Main", "bit_depth": 8, "frame_count": 30},
        HEVC_MAIN_51, [],
    ),
    "HEVC Main 10 HDR": (
        "hevc_main10_hdr.mp4",
        {"profile": "Main 10", "bit_depth": 10, "pixel_format": "yuv420p10le",
         "color_transfer": "smpte2084", "frame_count": 30},
        HEVC_MAIN10_51, [],
    ),
    "HEVC High tier": (
        "hevc_high_tier.mp4",
        {"level": 153, "high_tier": True, "frame_count": 15},
        None, [r"HEVC High tier"],
    ),
    "rotated MOV": (
        "rotated.mov",
        {"display_rotation": 90, "width": 640, "height": 360, "frame_count": 30},
        None, [r"rotated 90°: must be turned upright"],
    ),
    "variable frame rate": (
        "vfr.mp4",
        {"variable_frame_rate": True, "frame_count": 30},
        None, [r"variable frame rate"],
    ),
    "PCM audio and timecode": (
        "pcm_timecode.mov",
        {"audio_codecs": ("pcm_s16le",), "other_streams": 1, "frame_count": 25},
        H264_HIGH_41, [],
    ),
    "720x576 16:15": (
        "pal_16_15.mp4",
        {"width": 720, "height": 576, "sample_aspect_ratio": Fraction(16, 15)},
        None, [r"non-square pixels 16:15"],
    ),
    "MPEG-2": (
        "mpeg2.mpg",
        {"container": "mpeg", "codec": "mpeg2video", "frame_count": 25},
        None, [r"mpeg2video is not H\.264 or HEVC"],
    ),
    "VP9 WebM": (
        "vp9.webm",
        {"container": "matroska,webm", "codec": "vp9", "frame_count": 30},
        None, [r"vp9 is not H\.264 or HEVC"],
    ),
    "AV1": ("av1.mp4", {"codec": "av1", "frame_count": 15}, None, [r"av1 is not"]),
    "MJPEG AVI": (
        "mjpeg.avi",
        {"container": "avi", "codec": "mjpeg", "frame_count": 30, "full_range": True},
        None, [r"mjpeg is not H\.264 or HEVC", r"full-range samples"],
    ),
    "MJPEG MOV": (
        "mjpeg.mov", {"codec": "mjpeg"}, None, [r"mjpeg is not", r"full-range"],
    ),
    "H.264 and AAC in MKV": (
        "h264_aac.mkv",
        {"container": "matroska,webm", "audio_codecs": ("aac",), "frame_count": 30,
         "frame_rate": 30},
        H264_HIGH_41, [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_probed_and_classified(
    videos: Mapping[str, Path], kind: str
) -> None:
    name, fields, transfer_syntax, reasons = KINDS[kind]
    info = probe(videos[name])
    classification = classify(info)

    assert {field: getattr(info, field) for field in fields} == fields
    assert classification.transfer_syntax == transfer_syntax
    assert classification.passes_through == (transfer_syntax is not None)
    assert len(classification.reasons) == len(reasons), classification.reasons
    for pattern, reason in zip(reasons, classification.reasons, strict=True):
        assert re.match(pattern, reason), reason


def test_conforming_h264_is_read_whole(videos: Mapping[str, Path]) -> None:
    path = videos["h264_high_1080p30.mp4"]

    info = probe(path)

    assert (info.bit_depth, info.chroma, info.pixel_format) == (8, "4:2:0", "yuv420p")
    assert (info.display_rotation, info.sample_aspect_ratio) == (0, 1)
    assert not info.variable_frame_rate and not info.interlaced
    assert info.container.startswith("mov,mp4")
    assert (info.audio, info.other_streams) == ((), 0)
    assert info.size_bytes == path.stat().st_size > info.video_bytes > 0


def test_variable_frame_rate_is_counted_not_guessed(videos: Mapping[str, Path]) -> None:
    path = videos["vfr.mp4"]
    with av.open(str(path)) as container:
        stamps = sorted(
            p.pts for p in container.demux(video=0) if p.pts is not None and p.size
        )
    assert len({b - a for a, b in pairwise(stamps)}) > 1  # the input really varies

    info = probe(path)

    assert info.frame_count == 30
    assert info.duration_seconds == pytest.approx(1 + 14 / 30, abs=0.01)
    assert info.frame_rate == pytest.approx(30 / (1 + 14 / 30), rel=0.01)


def test_pcm_is_not_allowed_in_mp4_but_aac_at_48_khz_is(
    videos: Mapping[str, Path],
) -> None:
    pcm = probe(videos["pcm_timecode.mov"])
    aac = probe(videos["h264_aac.mkv"])

    assert not audio_allowed(pcm)
    assert audio_problems(pcm) == (
        "pcm_s16le audio is not AAC, MP3 or MPEG-1 Layer II",
    )
    assert aac.audio == (AudioTrack("aac", 48_000, 2, aac.audio[0].bit_rate),)
    assert audio_allowed(aac)


def test_metadata_tags_and_file_names_are_never_logged(
    videos: Mapping[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pacsbridge")

    probe(videos["h264_high_1080p30.mp4"])

    assert "probed a video: h264, 30 frames" in caplog.text  # the probe did log
    assert "Doe" not in caplog.text
    assert "h264_high_1080p30" not in caplog.text  # a name may be the patient's


def _about(path: Path, problem: str) -> str:
    return re.escape(str(path)) + ": " + problem


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("text.mp4", "is not a video: FFmpeg knows no container format in it"),
        ("empty.mp4", "is empty, not a video"),
        ("truncated.mp4", "is an MP4 or QuickTime file, damaged or cut short"),
        (
            "truncated_faststart.mp4",
            r"is damaged or cut short: its index lists 30 video frames but only "
            r"\d+ can be read",
        ),
        ("still.jpg", "is a still image, not a video"),
        ("still_renamed.mp4", "is a still image, not a video"),
        ("audio_only.m4a", "has no video stream"),
    ],
)
def test_what_is_not_a_whole_video_is_rejected(
    videos: Mapping[str, Path], name: str, problem: str
) -> None:
    path = videos[name]

    with pytest.raises(InputRejected, match=_about(path, problem)):
        probe(path)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "gone.mp4"

    with pytest.raises(InputRejected, match=_about(path, "cannot be read: No such")):
        probe(path)


# The limits themselves, on streams described rather than encoded.

_HEVC_2160P60 = replace(
    videogen.H264_1080P30, codec="hevc", profile="Main", level=153, width=3840,
    height=2160, frame_rate=Fraction(60), frame_count=600,
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "transfer_syntax", "reason"),
    [
        ({}, H264_HIGH_41, None),
        ({"frame_rate": Fraction(30_000, 1_001)}, H264_HIGH_41, None),
        (
            {"width": 1024, "height": 768, "frame_rate": Fraction(80)},
            H264_HIGH_41,
            None,
        ),
        ({"frame_rate": Fraction(31)}, None, r"1920x1080 at 31 frames/s is outside"),
        ({"frame_rate": Fraction(60_000, 1_001)}, None, r".* at 59\.94 frames/s"),
        ({"width": 4096, "height": 2304}, None, r"4096x2304 is larger than Level 4\.1"),
        ({"profile": "Main"}, None, r"H\.264 Main profile is not High Profile"),
        ({"profile": "High 10", "bit_depth": 10}, None, r"H\.264 High 10 profile"),
        ({"level": 42}, None, r"H\.264 level 4\.2 is above 4\.1"),
        ({"video_bytes": 200_000_000}, None, r"160\.0 Mbit/s is above .* 75 Mbit/s$"),
        ({"chroma": "4:4:4"}, None, r"4:4:4 chroma"),
        ({"display_rotation": 270}, None, r"rotated 270°"),
    ],
)
def test_h264_limits_of_level_4_1(
    changes: dict[str, object], transfer_syntax: str | None, reason: str | None
) -> None:
    classification = classify(replace(videogen.H264_1080P30, **changes))  # type: ignore[arg-type]

    assert classification.transfer_syntax == transfer_syntax
    if reason is not None:
        assert re.match(reason, classification.reasons[0]), classification.reasons


@pytest.mark.parametrize(
    ("changes", "transfer_syntax", "reason"),
    [
        ({}, HEVC_MAIN_51, None),
        ({"profile": "Main 10", "bit_depth": 10}, HEVC_MAIN10_51, None),
        # PS3.5 8.2.11 sets Bits Stored to 10: an 8-bit Main 10 stream is not it.
        ({"profile": "Main 10"}, None, r"8-bit samples in a Main 10 stream"),
        ({"profile": "Rext", "chroma": "4:2:2"}, None, r"HEVC Rext profile"),
        ({"level": 156}, None, r"HEVC level 5\.2 is above 5\.1"),
        ({"frame_rate": Fraction(120)}, None, r"3840x2160 at 120 frames/s"),
        ({"width": 7680, "height": 4320}, None, r"7680x4320 is larger than Level 5\.1"),
        ({"sample_aspect_ratio": Fraction(4, 3)}, None, r"non-square pixels 4:3"),
    ],
)
def test_hevc_limits_of_level_5_1(
    changes: dict[str, object], transfer_syntax: str | None, reason: str | None
) -> None:
    classification = classify(replace(_HEVC_2160P60, **changes))  # type: ignore[arg-type]

    assert classification.transfer_syntax == transfer_syntax
    if reason is not None:
        assert re.match(reason, classification.reasons[0]), classification.reasons


@pytest.mark.parametrize(
    ("track", "problem"),
    [
        (AudioTrack("aac", 48_000, 2, 192_000), None),
        (AudioTrack("aac", 48_000, 6, 640_000), None),
        (AudioTrack("mp3", 44_100, 2, 320_000), None),
        (AudioTrack("mp2", 48_000, 2, 384_000), None),
        (AudioTrack("aac", 44_100, 2, 128_000), "aac audio at 44100 Hz"),
        (AudioTrack("aac", 48_000, 1, 64_000), "aac audio with 1 channels"),
        (AudioTrack("mp3", 48_000, 2, 384_000), "mp3 audio at 384 kbit/s"),
        (AudioTrack("ac3", 48_000, 2, 384_000), "ac3 audio is not AAC"),
    ],
)
def test_audio_constraints_of_ps3_5_8_2_12(
    track: AudioTrack, problem: str | None
) -> None:
    info = replace(videogen.H264_1080P30, audio=(track,))

    assert audio_allowed(info) == (problem is None)
    if problem is not None:
        assert audio_problems(info)[0].startswith(problem)
