"""Videos are used as they are, remuxed or transcoded into what PS3.5 8.2.7 takes.

Each input of tests/videogen.py is prepared once per session; the tests then read
the results with the ffprobe and ffmpeg command lines, independently of the PyAV
code that wrote them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import struct
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from av.filter import Graph

from pacsbridge.config import VideoSettings
from pacsbridge.errors import InputRejected
from pacsbridge.media import tonemap, transcode
from pacsbridge.media.tonemap import hdr_to_sdr, plan_pictures, write_cube
from pacsbridge.media.transcode import PreparedVideo, prepare_video, split_video
from pacsbridge.media.video import probe
from tests import videogen
from tests.videogen import PATIENT_TAG, ffmpeg_rgb, ffprobe, picture

H264_HIGH_41 = "1.2.840.10008.1.2.4.102"
HEVC_MAIN_51 = "1.2.840.10008.1.2.4.107"
HEVC_MAIN10_51 = "1.2.840.10008.1.2.4.108"
AAC = "AAC 48 kHz stereo"  # re-encoded; otherwise the input's own audio, copied

Prepare = Callable[[str], PreparedVideo]
Case = tuple[str, str, tuple[int, int], Fraction, int, str | None, tuple[str, ...]]

# Input: path taken, transfer syntax, upright size, frame rate, frames, audio
# (None, "copied" or AAC), and the notes for the user, in order.
CASES: dict[str, Case] = {
    "clean.mp4": ("as-is", H264_HIGH_41, (640, 360), Fraction(30), 30, "copied", ()),
    "h264_576i.mp4": ("as-is", H264_HIGH_41, (720, 576), Fraction(25), 10, None, ()),
    "hevc_main.mp4": ("as-is", HEVC_MAIN_51, (640, 360), Fraction(30), 30, None, ()),
    "hevc_main10_hdr.mp4": (
        "as-is", HEVC_MAIN10_51, (640, 360), Fraction(30), 30, None, (),
    ),
    "h264_high_1080p30.mp4": (
        "remuxed", H264_HIGH_41, (1920, 1080), Fraction(30), 30, None,
        ("metadata tags dropped",),
    ),
    "h264_faststart.mp4": (
        "remuxed", H264_HIGH_41, (1920, 1080), Fraction(30), 30, None,
        ("metadata tags dropped",),
    ),
    "h264_aac.mkv": (
        "remuxed", H264_HIGH_41, (640, 360), Fraction(30), 30, "copied", (),
    ),
    "hevc_hev1.mp4": ("remuxed", HEVC_MAIN_51, (320, 240), Fraction(30), 15, None, ()),
    "h264_full_range.mp4": (
        "transcoded", H264_HIGH_41, (320, 240), Fraction(30), 15, None, (),
    ),
    "pcm_timecode.mov": (
        "remuxed", H264_HIGH_41, (320, 240), Fraction(25), 25, AAC,
        ("audio re-encoded to AAC", "timecode track dropped", "metadata tags dropped"),
    ),
    "extras.mp4": (
        "remuxed", H264_HIGH_41, (320, 240), Fraction(30), 30, AAC,
        ("audio re-encoded to AAC", "subtitle track dropped", "cover art dropped",
         "metadata tags dropped"),
    ),
    "trimmed.mp4": (
        "transcoded", H264_HIGH_41, (640, 360), Fraction(30), 15, "copied", (),
    ),
    "h264_baseline.mp4": (
        "transcoded", H264_HIGH_41, (640, 360), Fraction(30), 30, None, (),
    ),
    "h264_1080p60.mp4": (
        "transcoded", H264_HIGH_41, (1360, 764), Fraction(60), 60, None,
        ("scaled to 1360x764 to fit Level 4.1",),
    ),
    "h264_1080p120.mp4": (
        "transcoded", H264_HIGH_41, (1360, 764), Fraction(60), 15, None,
        ("frame rate lowered from 120 to 60 frames/s to fit Level 4.1",
         "scaled to 1360x764 to fit Level 4.1"),
    ),
    "h264_4k30.mp4": (
        "transcoded", H264_HIGH_41, (1920, 1080), Fraction(30), 30, None,
        ("scaled to 1920x1080 to fit Level 4.1",),
    ),
    "h264_422.mp4": (
        "transcoded", H264_HIGH_41, (640, 360), Fraction(30), 30, None, (),
    ),
    "mpeg2_576i.mpg": (
        "transcoded", H264_HIGH_41, (768, 576), Fraction(25), 10, AAC,
        ("deinterlaced", "resampled to square pixels", "audio re-encoded to AAC"),
    ),
    "hevc_high_tier.mp4": (
        "transcoded", H264_HIGH_41, (320, 240), Fraction(30), 15, None, (),
    ),
    "rotated.mov": (
        "transcoded", H264_HIGH_41, (360, 640), Fraction(30), 30, None,
        ("turned upright",),
    ),
    "hlg_rotated.mov": (
        "transcoded", H264_HIGH_41, (180, 320), Fraction(25), 10, AAC,
        ("tone-mapped HDR to SDR", "turned upright", "audio re-encoded to AAC"),
    ),
    "pq_high10.mp4": (
        "transcoded", H264_HIGH_41, (320, 180), Fraction(25), 10, None,
        ("tone-mapped HDR to SDR",),
    ),
    "vfr.mp4": (
        "transcoded", H264_HIGH_41, (320, 240), Fraction(225, 11), 30, None,
        ("made constant-rate at 20.455 frames/s",),
    ),
    "pal_16_15.mp4": (
        "transcoded", H264_HIGH_41, (768, 576), Fraction(25), 25, None,
        ("resampled to square pixels",),
    ),
    "mpeg2.mpg": ("transcoded", H264_HIGH_41, (720, 576), Fraction(25), 25, None, ()),
    "vp9.webm": ("transcoded", H264_HIGH_41, (320, 240), Fraction(30), 30, None, ()),
    "av1.mp4": ("transcoded", H264_HIGH_41, (128, 96), Fraction(30), 15, None, ()),
    "mjpeg.avi": ("transcoded", H264_HIGH_41, (320, 240), Fraction(30), 30, None, ()),
    "h264_bframes.avi": (
        "transcoded", H264_HIGH_41, (320, 240), Fraction(30), 15, None, (),
    ),
    "mjpeg.mov": ("transcoded", H264_HIGH_41, (320, 240), Fraction(30), 30, None, ()),
}  # fmt: skip
REMUXED = [name for name, case in CASES.items() if case[0] == "remuxed"]
# ffprobe's names for the profiles of each transfer syntax.
PROFILES = {H264_HIGH_41: "High", HEVC_MAIN_51: "Main", HEVC_MAIN10_51: "Main 10"}
PIXEL_FORMATS = {
    H264_HIGH_41: "yuv420p",
    HEVC_MAIN_51: "yuv420p",
    HEVC_MAIN10_51: "yuv420p10le",
}


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    return videogen.videos(tmp_path_factory)


@pytest.fixture(scope="session")
def prepared(
    videos: Mapping[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Prepare:
    """``prepared(name)``: the input prepared once per session, at the defaults."""
    work = tmp_path_factory.mktemp("work")
    done: dict[str, PreparedVideo] = {}

    def _prepare(name: str) -> PreparedVideo:
        if name not in done:
            path = videos[name]
            done[name] = prepare_video(path, probe(path), VideoSettings(), work)
        return done[name]

    return _prepare


@pytest.mark.parametrize("name", CASES)
def test_each_input_takes_its_path(
    videos: Mapping[str, Path], prepared: Prepare, name: str
) -> None:
    taken, syntax, size, rate, frames, _, notes = CASES[name]

    result = prepared(name)

    assert (result.path_taken, result.transfer_syntax) == (taken, syntax)
    assert (result.info.width, result.info.height) == size
    assert (result.info.frame_rate, result.info.frame_count) == (rate, frames)
    assert result.notes == notes
    assert bool(result.reasons) == (taken != "as-is")
    assert (result.file == videos[name]) == (taken == "as-is")


@pytest.mark.parametrize("name", CASES)
def test_ffprobe_agrees_with_what_was_prepared(
    videos: Mapping[str, Path], prepared: Prepare, name: str
) -> None:
    _, syntax, size, rate, frames, audio, _ = CASES[name]
    result = prepared(name)

    answer = ffprobe(result.file)
    video, *others = answer["streams"]

    assert video["codec_type"] == "video"
    assert video["profile"] == PROFILES[syntax]
    assert video["pix_fmt"] == PIXEL_FORMATS[syntax]
    if syntax == H264_HIGH_41:
        assert video["level"] <= 41
    assert (video["width"], video["height"]) == size  # upright, nothing to turn
    assert "rotation" not in str(video.get("side_data_list", ""))
    assert video.get("sample_aspect_ratio", "1:1") == "1:1"
    assert int(video["nb_read_frames"]) == result.info.frame_count == frames
    # It starts at zero (give or take a frame), whatever the input's first time.
    assert all(float(s["start_time"]) <= 1.01 / rate for s in answer["streams"])
    assert _packet_spacing(result.file) == {round(float(1 / rate), 4)}
    assert [s["codec_type"] for s in others] == (["audio"] if audio else [])
    if audio == AAC:
        assert (others[0]["codec_name"], others[0]["profile"]) == ("aac", "LC")
        assert (others[0]["sample_rate"], others[0]["channels"]) == ("48000", 2)
    elif audio == "copied":
        source = ffprobe(videos[name])["streams"][1]
        assert others[0]["codec_name"] == source["codec_name"]


def _packet_spacing(path: Path) -> set[float]:
    """The distinct gaps between the video frames' presentation times."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=pts_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    times = sorted(float(line) for line in result.stdout.split())
    return {round(b - a, 4) for a, b in itertools.pairwise(times)}


def test_as_is_is_the_input_itself_untouched(
    videos: Mapping[str, Path], tmp_path: Path
) -> None:
    path = videos["clean.mp4"]
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    result = prepare_video(path, probe(path), VideoSettings(), tmp_path)

    assert result.file == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", REMUXED)
def test_remuxing_copies_the_video_packets_untouched(
    videos: Mapping[str, Path], prepared: Prepare, name: str
) -> None:
    result = prepared(name)

    assert _video_packets(result.file) == _video_packets(videos[name])


def _video_packets(path: Path) -> list[bytes]:
    """Every video packet, in decode order. (An 'hvc1' sample entry rewrites the
    decoder configuration record: its arrays are complete, unlike 'hev1'.)"""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_copied_audio_is_untouched(
    videos: Mapping[str, Path], prepared: Prepare
) -> None:
    result = prepared("h264_aac.mkv")

    assert _audio_packets(result.file) == _audio_packets(videos["h264_aac.mkv"])


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def test_hevc_is_remuxed_into_an_hvc1_sample_entry(prepared: Prepare) -> None:
    result = prepared("hevc_hev1.mp4")

    assert ffprobe(result.file)["streams"][0]["codec_tag_string"] == "hvc1"


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[0] != "as-is"])
def test_nothing_naming_the_patient_is_left(prepared: Prepare, name: str) -> None:
    result = prepared(name)

    # Tags, the subtitle text and the handler names all held it in the inputs.
    assert PATIENT_TAG.split()[0].encode() not in result.file.read_bytes()
    assert "Doe" not in str(ffprobe(result.file))


def test_extras_name_what_kept_the_file_from_passing(prepared: Prepare) -> None:
    result = prepared("extras.mp4")

    assert result.reasons == (
        "aac audio at 44100 Hz",
        "aac audio with 1 channels",
        "subtitle track",
        "cover art",
        "metadata tags (comment, handler_name, name, title)",
    )


def test_xmp_in_a_uuid_box_is_left_behind(
    videos: Mapping[str, Path], tmp_path: Path
) -> None:
    # Cameras put XMP in a top-level uuid box, where no demuxer shows it as tags.
    xmp = f"<x:xmpmeta><dc:creator>{PATIENT_TAG}</dc:creator></x:xmpmeta>".encode()
    path = tmp_path / "xmp.mp4"
    box = struct.pack(">I4s", 24 + len(xmp), b"uuid") + bytes(16) + xmp
    path.write_bytes(videos["clean.mp4"].read_bytes() + box)

    result = prepare_video(path, probe(path), VideoSettings(), tmp_path)

    assert (result.path_taken, result.reasons) == ("remuxed", ("a 'uuid' box",))
    assert b"Doe" not in result.file.read_bytes()


def test_frames_an_edit_list_hides_stay_hidden(prepared: Prepare) -> None:
    # A copy would show all 20 frames of the MP4's sample table: only the 15 that
    # its edit list shows are decoded and encoded.
    result = prepared("trimmed.mp4")

    assert result.reasons == ("an edit list hides 5 of its frames",)
    assert result.info.frame_count == 15


def test_rotated_video_is_turned_the_way_players_turn_it(
    videos: Mapping[str, Path], prepared: Prepare
) -> None:
    result = prepared("rotated.mov")
    # The ffmpeg command line applies the display matrix when it decodes.
    shown = _rgb(["-i", str(videos["rotated.mov"])], 360, 640)

    turned = _rgb(["-i", str(result.file)], 360, 640)

    assert np.abs(turned - shown).mean() < 8
    assert np.abs(turned - shown[::-1, ::-1]).mean() > 30  # the other way round


def _rgb(args: list[str], width: int, height: int) -> np.typing.NDArray[np.float64]:
    data = ffmpeg_rgb(args, width, height)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(float)


def _luma(rgb: np.typing.NDArray[np.float64]) -> np.typing.NDArray[np.float64]:
    """BT.709 Y' in 8-bit video range, as an SDR encoder would write it."""
    result: np.typing.NDArray[np.float64] = 16 + 219 / 255 * (
        rgb @ np.array([0.2126, 0.7152, 0.0722])
    )
    return result


@pytest.mark.parametrize("name", ["pq_high10.mp4", "hlg_rotated.mov"])
def test_hdr_is_tone_mapped_not_washed_out(
    videos: Mapping[str, Path], prepared: Prepare, name: str
) -> None:
    # The HDR inputs are this SDR frame at HDR light levels (tests/videogen.py).
    sdr = _levels(_luma(_rgb(picture("320x180", "25", "0.4"), 320, 180)))
    result = prepared(name)

    colours = ffprobe(result.file)["streams"][0]
    mapped = _levels(_first_luma(result.file, 8))
    naive = _levels(_first_luma(videos[name], 10))  # the HDR codes shown as SDR

    # Up to about 100 cd/m2 (74 % SDR signal) the BT.2390 curve changes nothing;
    # above it rolls off so that SDR white lands on 90 % (code 214), never above.
    # So the mean and the shadows stay within 6 codes (3 % of the range: 4:2:0,
    # rounding and CRF 23 take 1 or 2) and the brightest parts lose up to 20.
    assert abs(mapped["mean"] - sdr["mean"]) < 6
    assert abs(mapped["p5"] - sdr["p5"]) < 6
    assert sdr["p95"] - 20 < mapped["p95"] <= sdr["p95"]
    assert [colours[f"color_{k}"] for k in ("primaries", "transfer", "space")] == [
        "bt709"
    ] * 3
    assert colours["color_range"] == "tv"
    # Shown as it is, the signal is flat: the same limits would catch it.
    assert abs(naive["mean"] - sdr["mean"]) > 6 or naive["p95"] < sdr["p95"] - 20


def _first_luma(path: Path, bits: int) -> np.typing.NDArray[np.float64]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        samples = frame.to_ndarray()[: frame.height].astype(float)
    return samples / 2 ** (bits - 8)


def _levels(luma: np.typing.NDArray[np.float64]) -> dict[str, float]:
    return {
        "mean": float(luma.mean()),
        "p5": float(np.percentile(luma, 5)),
        "p95": float(np.percentile(luma, 95)),
    }


@pytest.mark.parametrize("transfer", sorted(tonemap.HDR_TRANSFERS))
@pytest.mark.parametrize("colours", ["grey", "random"])
def test_the_lut_ffmpeg_applies_follows_the_curve(
    transfer: str, colours: str, tmp_path: Path
) -> None:
    signal = np.random.default_rng(7).random((64 * 64, 3 if colours == "random" else 1))
    signal = signal * np.ones(3)
    graph = Graph()
    source = graph.add_buffer(
        width=64, height=64, format="rgb48le", time_base=Fraction(1, 25)
    )
    lut = graph.add("lut3d", file=str(write_cube(transfer, tmp_path)))
    graph.link_nodes(source, lut, graph.add("buffersink")).configure()
    samples = np.round(signal * 65535).astype(np.uint16).reshape(64, 64, 3)

    graph.push(av.VideoFrame.from_ndarray(samples, "rgb48le"))

    mapped = graph.pull().to_ndarray().reshape(-1, 3) / 65535
    error = np.abs(mapped - hdr_to_sdr(signal, transfer)) * 255  # in 8-bit codes
    if colours == "grey":
        assert error.max() < 0.5
    else:  # harder: every saturation, where a channel's gamma is steep near 0
        assert np.percentile(error, 99) < 5 and error.mean() < 0.25


def test_the_curve_never_darkens_a_brighter_grey() -> None:
    grey = np.repeat(np.linspace(0, 1, 1001)[:, np.newaxis], 3, axis=1)

    for transfer in tonemap.HDR_TRANSFERS:
        assert np.all(np.diff(hdr_to_sdr(grey, transfer)[:, 0]) >= 0)


def test_hdr_reference_white_becomes_nearly_sdr_white() -> None:
    pq_203 = np.array([[0.5806] * 3])  # ST 2084 signal of 203 cd/m2
    hlg_75 = np.array([[0.75] * 3])  # BT.2408: HLG reference white

    assert hdr_to_sdr(pq_203, "smpte2084") == pytest.approx(0.903, abs=0.005)
    assert hdr_to_sdr(hlg_75, "arib-std-b67") == pytest.approx(0.903, abs=0.005)


@pytest.mark.parametrize(
    ("changes", "size", "rate"),
    [
        ({}, (1920, 1080), 30),
        ({"width": 3840, "height": 2160}, (1920, 1080), 30),
        ({"width": 7680, "height": 4320}, (1920, 1080), 30),
        # Above 30 frames/s the rate stays while the picture keeps 1280x720 ...
        ({"frame_rate": Fraction(60)}, (1360, 764), 60),
        ({"width": 3840, "height": 2160, "frame_rate": Fraction(60)}, (1360, 764), 60),
        ({"width": 1280, "height": 720, "frame_rate": Fraction(60)}, (1280, 720), 60),
        # ... and halves when it would not.
        ({"frame_rate": Fraction(120)}, (1360, 764), 60),
        ({"width": 1280, "height": 720, "frame_rate": Fraction(120)}, (1280, 720), 60),
        ({"frame_rate": Fraction(240)}, (1360, 764), 60),
        # Small pictures keep high rates, up to Level 4.1's 172 pictures a second.
        ({"width": 640, "height": 360, "frame_rate": Fraction(120)}, (640, 360), 120),
        ({"width": 640, "height": 360, "frame_rate": Fraction(240)}, (640, 360), 120),
        ({"frame_rate": Fraction(60_000, 1_001)}, (1360, 764), Fraction(60_000, 1_001)),
        ({"display_rotation": 90}, (1080, 1920), 30),
        ({"display_rotation": 270, "width": 3840, "height": 2160}, (1080, 1920), 30),
        ({"width": 720, "height": 576, "sample_aspect_ratio": Fraction(16, 15)},
         (768, 576), 30),
        ({"width": 720, "height": 480, "sample_aspect_ratio": Fraction(8, 9)},
         (640, 480), 30),
        ({"width": 4096, "height": 256}, (4096, 256), 30),
        ({"width": 8192, "height": 256}, (4096, 128), 30),
        ({"width": 322, "height": 241}, (322, 240), 30),
    ],
)  # fmt: skip
def test_pictures_are_fitted_to_level_4_1(
    changes: dict[str, Any], size: tuple[int, int], rate: Fraction, tmp_path: Path
) -> None:
    plan = plan_pictures(replace(videogen.H264_1080P30, **changes), tmp_path)

    assert (plan.width, plan.height, plan.rate) == (*size, rate)
    macroblocks = -(-plan.width // 16) * -(-plan.height // 16)
    assert macroblocks <= 8192 and macroblocks * plan.rate <= 245_760
    assert max(plan.width, plan.height) <= 4096 and plan.rate <= 172


def _about(path: Path, problem: str) -> str:
    return re.escape(str(path)) + ": " + problem


@pytest.mark.parametrize("name", ["h264_faststart.mp4", "baseline_faststart.mp4"])
def test_a_file_cut_short_after_probing_is_rejected(
    videos: Mapping[str, Path], tmp_path: Path, name: str
) -> None:
    # Its index is at the start, so the first half still opens and demuxes.
    whole = tmp_path / name
    if name == "baseline_faststart.mp4":  # to be transcoded, not remuxed
        _faststart(videos["h264_baseline.mp4"], whole)
    else:
        whole.write_bytes(videos[name].read_bytes())
    info = probe(whole)
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    work = tmp_path / "work"
    work.mkdir()

    problem = r"is damaged or cut short: \d+ of its 30 video frames could be read"
    with pytest.raises(InputRejected, match=_about(cut, problem)):
        prepare_video(cut, info, VideoSettings(), work)
    assert list(work.iterdir()) == []


def _faststart(source: Path, target: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy",
         "-movflags", "+faststart", str(target)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def test_a_file_that_no_longer_opens_is_rejected(
    videos: Mapping[str, Path], tmp_path: Path
) -> None:
    info = probe(videos["h264_high_1080p30.mp4"])
    cut = videos["truncated.mp4"]  # the same file, cut before its index

    with pytest.raises(InputRejected, match=_about(cut, "cannot be read as a video")):
        prepare_video(cut, info, VideoSettings(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_ffmpeg_failure_names_the_file_and_leaves_nothing(
    videos: Mapping[str, Path], tmp_path: Path
) -> None:
    path = videos["h264_baseline.mp4"]
    # model_copy does not validate: the preset reaches x264, which refuses it.
    settings = VideoSettings().model_copy(update={"preset": "no-such-preset"})

    problem = "could not be transcoded: FFmpeg reported Invalid argument"
    with pytest.raises(InputRejected, match=_about(path, problem)):
        prepare_video(path, probe(path), settings, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_does_not_classify_is_removed(
    videos: Mapping[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = videos["h264_baseline.mp4"]
    info = probe(path)
    monkeypatch.setattr(transcode, "probe", lambda p: replace(probe(p), level=42))

    problem = (
        "could not be made into an H.264 High Profile Level 4.1 video: "
        r"H\.264 level 4\.2 is above 4\.1"
    )
    with pytest.raises(InputRejected, match=_about(path, problem)):
        prepare_video(path, info, VideoSettings(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_quality_is_the_x264_crf(videos: Mapping[str, Path], tmp_path: Path) -> None:
    path = videos["h264_baseline.mp4"]
    info = probe(path)
    sizes = []
    for quality in (18, 35):
        settings = VideoSettings(quality=quality)
        result = prepare_video(path, info, settings, tmp_path)
        sizes.append(result.file.stat().st_size)
        assert f"crf={quality}.0" in result.file.read_bytes().decode("latin-1")

    assert sizes[0] > 2 * sizes[1]


def test_a_large_video_is_cut_at_key_frames(
    videos: Mapping[str, Path], tmp_path: Path
) -> None:
    path = videos["clean.mp4"]  # a key frame every 10 frames
    whole = prepare_video(path, probe(path), VideoSettings(), tmp_path)
    limit = path.stat().st_size // 2

    parts = split_video(whole, limit, tmp_path)

    assert len(parts) == 3
    assert [p.notes for p in parts] == [(f"part {n} of 3",) for n in (1, 2, 3)]
    assert {p.path_taken for p in parts} == {"remuxed"}
    for part in parts:
        assert part.file.stat().st_size <= limit
        assert part.transfer_syntax == H264_HIGH_41
        answer = ffprobe(part.file)
        assert int(answer["streams"][0]["nb_read_frames"]) == part.info.frame_count
        assert float(answer["streams"][0]["start_time"]) == 0
        assert [s["codec_type"] for s in answer["streams"]] == ["video", "audio"]
    assert sum(p.info.frame_count for p in parts) == whole.info.frame_count
    pieces = [_video_packets(p.file) for p in parts]
    assert [b for piece in pieces for b in piece] == _video_packets(path)


def test_a_small_video_or_one_group_of_pictures_is_not_cut(
    prepared: Prepare, tmp_path: Path
) -> None:
    small = prepared("clean.mp4")
    one_group = prepared("h264_baseline.mp4")

    assert split_video(small, small.info.size_bytes, tmp_path) == [small]
    assert split_video(one_group, 1_000, tmp_path) == [one_group]
    assert list(tmp_path.iterdir()) == []


def test_metadata_is_never_logged(
    videos: Mapping[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pacsbridge")
    path = videos["extras.mp4"]

    prepare_video(path, probe(path), VideoSettings(), tmp_path)

    assert "wrote a video of 30 frames" in caplog.text  # it did log
    assert "Doe" not in caplog.text
    assert "extras" not in caplog.text  # a file name may be the patient's
