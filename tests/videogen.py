"""Test videos made by the ffmpeg command line, and independent readers of videos.

Both video test modules share one folder of inputs per session: :func:`videos`
makes it on first use (a second or less of testsrc2 and a tone each) and hands
the same files to every later caller. :func:`ffprobe` and :func:`count_frames`
ask the ffprobe command line, so a bug in PacsBridge's PyAV code cannot hide
itself behind the same library.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pacsbridge.media.video import VideoInfo
from tests.peers import require_or_skip

# A 10 s 1080p30 H.264 High stream as probe() describes it, for rules tested on
# streams described rather than encoded.
H264_1080P30 = VideoInfo(
    container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", profile="High", level=40,
    pixel_format="yuv420p", bit_depth=8, chroma="4:2:0", width=1920, height=1080,
    display_rotation=0, sample_aspect_ratio=Fraction(1), frame_rate=Fraction(30),
    frame_count=300, duration_seconds=10.0, variable_frame_rate=False,
    interlaced=False, color_transfer="", audio=(), other_streams=0,
    size_bytes=10_000_000, video_bytes=9_000_000,
)  # fmt: skip

PATIENT_TAG = "Doe^Jane 1970-01-01"

_FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
_X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"]
_TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]
_TAGS = ["-metadata", f"title={PATIENT_TAG}", "-metadata", f"comment={PATIENT_TAG}"]

# SDR testsrc2 (BT.709) turned into real HDR signals by zimg, SDR white at the
# BT.2408 reference white of 203 cd/m2: PQ directly; HLG on a 1000 cd/m2 display,
# where 203 cd/m2 is 75 % signal. The tone-mapping tests compare the result with
# the SDR picture, so the inputs must hold HDR light levels, not relabelled SDR.
# zimg applies the HLG OOTF to each component, BT.2100 to the luminance: the two
# agree on greys only, so the HLG input is testsrc2's BT.709 luma as grey.
_TO_LINEAR = (
    "scale=out_color_matrix=bt709:out_range=tv,format=yuv444p,"
    "zscale=tin=709:pin=709:min=709:rin=tv:t=linear:p=709:npl={peak},format=gbrpf32le"
)
TO_PQ = (
    _TO_LINEAR.format(peak=203)
    + ",zscale=p=2020:t=smpte2084:m=2020_ncl:r=tv:npl=203,format=yuv420p10le"
)
_LUMA = "".join(
    f":{out}{source}={weight}"
    for out in "rgb"
    for source, weight in zip("rgb", (0.2126, 0.7152, 0.0722), strict=True)
)
TO_HLG = (
    f"format=rgb24,colorchannelmixer={_LUMA[1:]},"
    + _TO_LINEAR.format(peak=1000)
    + ",colorchannelmixer=rr=0.203:gg=0.203:bb=0.203"
    + ",zscale=p=2020:t=arib-std-b67:m=2020_ncl:r=tv:npl=1000,format=yuv420p10le"
)
_BT2020 = ["-color_primaries", "bt2020", "-colorspace", "bt2020nc"]


def picture(
    size: str, rate: str, seconds: str = "1", source: str = "testsrc2"
) -> list[str]:
    """ffmpeg input arguments for a synthetic picture source."""
    return ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]


def _x265(params: str = "") -> list[str]:
    return [*_X265, "-x265-params", "log-level=error" + params]


# File name: the ffmpeg commands that write it, in order. {out} is its path, {dir}
# the folder; a command whose last argument is neither writes to {out}.
INPUTS: dict[str, list[list[str]]] = {
    "h264_high_1080p30.mp4": [
        [*picture("1920x1080", "30"), *_X264, "-profile:v", "high", "-level:v", "4.1",
         *_TAGS],
        ["-i", "{out}", "-c", "copy", "-movflags", "+faststart",
         "{dir}/h264_faststart.mp4"],
    ],
    "h264_baseline.mp4": [
        [*picture("640x360", "30"), *_X264, "-profile:v", "baseline"],
    ],
    # Labelled Level 4.1 by force: the label is not what decides.
    "h264_1080p60.mp4": [
        [*picture("1920x1080", "60"), *_X264, "-preset", "ultrafast", "-x264-params",
         "8x8dct=1", "-profile:v", "high", "-level:v", "4.1"],
    ],
    # A phone's slow motion: 30 frames at 120 frames/s.
    "h264_1080p120.mp4": [
        [*picture("1920x1080", "120", "0.25"), *_X264, "-preset", "ultrafast",
         "-x264-params", "8x8dct=1", "-profile:v", "high"],
    ],
    "h264_4k30.mp4": [
        [*picture("3840x2160", "30", source="testsrc"), *_X264, "-preset", "ultrafast",
         "-x264-params", "8x8dct=1", "-profile:v", "high"],
    ],
    "h264_422.mp4": [[*picture("640x360", "30"), *_X264, "-pix_fmt", "yuv422p"]],
    # As some Android phones write: High Profile, but samples from 0 to 255.
    "h264_full_range.mp4": [
        [*picture("320x240", "30", "0.5"), *_X264, "-color_range", "pc"],
    ],
    "h264_576i.mp4": [
        [*picture("720x576", "25", "0.4"), *_X264, "-flags", "+ilme+ildct",
         "-x264-params", "tff=1"],
    ],
    # What a clinic's tower records: PAL 4:3 MPEG-2, interlaced, with MP2 sound.
    "mpeg2_576i.mpg": [
        [*picture("720x576", "25", "0.4"), *_TONE, "-vf", "setsar=16/15",
         "-c:v", "mpeg2video", "-q:v", "5", "-flags", "+ilme+ildct", "-top", "1",
         "-c:a", "mp2", "-ac", "2", "-shortest"],
    ],
    "hevc_main.mp4": [[*picture("640x360", "30"), *_x265(), "-pix_fmt", "yuv420p"]],
    # Tagged 'hev1', FFmpeg's own choice for HEVC in MP4.
    "hevc_hev1.mp4": [
        [*picture("320x240", "30", "0.5"), "-c:v", "libx265", "-preset", "ultrafast",
         "-x265-params", "log-level=error", "-pix_fmt", "yuv420p"],
    ],
    "hevc_main10_hdr.mp4": [
        [*picture("640x360", "30"), *_x265(), "-pix_fmt", "yuv420p10le",
         "-color_primaries", "bt2020", "-color_trc", "smpte2084",
         "-colorspace", "bt2020nc"],
    ],
    "hevc_high_tier.mp4": [
        [*picture("320x240", "30", "0.5"), "-pix_fmt", "yuv420p",
         *_x265(":level-idc=51:high-tier=1:vbv-maxrate=100000:vbv-bufsize=100000")],
    ],
    # FFmpeg 5.1 turns rotate=270 into the display matrix a phone writes for a
    # portrait video: turn 90 degrees clockwise to show it upright.
    "rotated.mov": [
        [*picture("640x360", "30"), *_X264, "{dir}/unrotated.mov"],
        ["-i", "{dir}/unrotated.mov", "-c", "copy", "-metadata:s:v:0", "rotate=270"],
    ],
    # A phone's portrait HDR video: HEVC Main 10, HLG, turned by its display matrix.
    "hlg_rotated.mov": [
        [*picture("320x180", "25", "0.4"), *_TONE, "-vf", TO_HLG, *_x265(),
         "-pix_fmt", "yuv420p10le", *_BT2020, "-color_trc", "arib-std-b67",
         "-c:a", "aac", "-shortest", "{dir}/hlg_unrotated.mov"],
        ["-i", "{dir}/hlg_unrotated.mov", "-c", "copy", "-metadata:s:v:0",
         "rotate=270"],
    ],
    "pq_high10.mp4": [
        [*picture("320x180", "25", "0.4"), "-vf", TO_PQ, "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p10le", *_BT2020,
         "-color_trc", "smpte2084"],
    ],
    # 15 frames at 30 frames/s, then 15 at 15 frames/s.
    "vfr.mp4": [
        [*picture("320x240", "30"), "-vf",
         "setpts='if(lt(N,15),N/30,0.5+(N-15)/15)/TB'", "-fps_mode", "passthrough",
         *_X264],
    ],
    "pcm_timecode.mov": [
        [*picture("320x240", "25"), *_TONE, *_X264, "-c:a", "pcm_s16le",
         "-timecode", "01:00:00:00"],
    ],
    "pal_16_15.mp4": [[*picture("720x576", "25"), "-vf", "setsar=16/15", *_X264]],
    "mpeg2.mpg": [[*picture("720x576", "25"), "-c:v", "mpeg2video", "-q:v", "5"]],
    "vp9.webm": [
        [*picture("320x240", "30"), "-c:v", "libvpx-vp9", "-deadline", "good",
         "-cpu-used", "8", "-b:v", "200k"],
    ],
    "av1.mp4": [
        [*picture("128x96", "30", "0.5"), "-c:v", "libsvtav1", "-preset", "12"],
    ],
    "mjpeg.avi": [[*picture("320x240", "30"), "-c:v", "mjpeg", "-q:v", "5"]],
    # H.264 High with B-frames in AVI: conforming, but AVI keeps decode order only.
    "h264_bframes.avi": [[*picture("320x240", "30", "0.5"), *_X264, "-bf", "2"]],
    "mjpeg.mov": [[*picture("320x240", "30"), "-c:v", "mjpeg", "-q:v", "5"]],
    "h264_aac.mkv": [
        [*picture("640x360", "30"), *_TONE, *_X264, "-ac", "2", "-c:a", "aac"],
    ],
    # Conforming and clean: H.264 High, AAC 48 kHz stereo, FFmpeg's own tags only.
    # A key frame every 10 frames, so that it can be cut.
    "clean.mp4": [
        [*picture("640x360", "30"), *_TONE, *_X264, "-profile:v", "high", "-g", "10",
         "-c:a", "aac", "-ac", "2"],
        # Cut at 0.5 s without decoding: an edit list hides the 5 frames before.
        ["-ss", "0.5", "-i", "{out}", "-c", "copy", "{dir}/trimmed.mp4"],
    ],
    # Conforming video with what must not travel: tags naming the patient, mono
    # AAC at 44.1 kHz, a subtitle track, and cover art.
    "extras.mp4": [
        [*picture("320x240", "30"), *_TONE, "-i", "{dir}/note.srt",
         "-f", "lavfi", "-i", "color=c=red:size=64x64:duration=0.04",
         "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map", "3:v",
         "-c:v:0", "libx264", "-preset", "veryfast", "-pix_fmt:v:0", "yuv420p",
         "-profile:v:0", "high", "-c:a", "aac", "-ar", "44100", "-ac", "1",
         "-c:s", "mov_text", "-c:v:1", "png", "-disposition:v:1", "attached_pic",
         *_TAGS, "-metadata:s:v:0", f"handler_name={PATIENT_TAG}",
         "-metadata:s:a:0", f"title={PATIENT_TAG}"],
    ],
    "still.jpg": [[*picture("320x240", "1"), "-frames:v", "1"]],
    "audio_only.m4a": [[*_TONE, "-c:a", "aac"]],
}  # fmt: skip


def videos(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Every input by file name; made once per session, in the session's temp."""
    require_or_skip(["ffmpeg", "ffprobe"])
    folder = tmp_path_factory.getbasetemp() / "videos"
    made = folder / ".made"
    if not made.exists():
        folder.mkdir(exist_ok=True)
        _make(folder)
        made.touch()
    return {p.name: p for p in folder.iterdir() if not p.name.startswith(".")}


def _make(folder: Path) -> None:
    (folder / "note.srt").write_text(
        f"1\n00:00:00,000 --> 00:00:01,000\n{PATIENT_TAG}\n"
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
        jobs = [pool.submit(_run, cmds, folder / name) for name, cmds in INPUTS.items()]
        for job in jobs:
            job.result()
    _write_special(folder)


def _run(commands: Sequence[Sequence[str]], out: Path) -> None:
    for command in commands:
        args = [
            arg.replace("{out}", str(out)).replace("{dir}", str(out.parent))
            for arg in command
        ]
        if "{" not in command[-1]:
            args.append(str(out))
        subprocess.run([*_FFMPEG, *args], check=True, capture_output=True, timeout=120)


def _write_special(folder: Path) -> None:
    (folder / "text.mp4").write_text("Not a video: a note someone renamed.\n" * 20)
    (folder / "empty.mp4").write_bytes(b"")
    whole = (folder / "h264_high_1080p30.mp4").read_bytes()  # its index is at the end
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    whole = (folder / "h264_faststart.mp4").read_bytes()  # its index is at the start
    (folder / "truncated_faststart.mp4").write_bytes(whole[: len(whole) // 2])
    (folder / "still_renamed.mp4").write_bytes((folder / "still.jpg").read_bytes())


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's streams (frames counted by decoding), format and tags."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
         "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def ffmpeg_rgb(args: Sequence[str], width: int, height: int) -> bytes:
    """The first frame ffmpeg makes of ``args`` as packed 8-bit RGB."""
    command = [*_FFMPEG, *args, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    result = subprocess.run([*command, "-"], check=True, capture_output=True)
    assert len(result.stdout) == width * height * 3
    return result.stdout
