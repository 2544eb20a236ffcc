"""Video: what a file's stream really is, and whether it may pass through as it is.

:func:`probe` reads the stream with PyAV, counting its frames by demuxing.
:func:`classify` checks it against PS3.5 8.2.7 (H.264 High Profile / Level 4.1),
8.2.10 and 8.2.11 (HEVC Main and Main 10 / Level 5.1) and names every constraint it
breaks, for the transcoder; :func:`audio_allowed` applies 8.2.12. No metadata tag is
logged: a title or comment may hold patient data.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from math import ceil
from pathlib import Path

import av
from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from av.video.reformatter import ColorTrc
from av.video.stream import VideoStream
from pydicom.uid import HEVCM10P51, HEVCMP51, MPEG4HP41

from pacsbridge.errors import InputRejected

logger = logging.getLogger(__name__)

# Bounds on what opening a file may read before the first packet: hostile inputs
# cannot make probing read or analyse without end.
_OPEN_OPTIONS = {"probesize": str(10_000_000), "analyzeduration": str(10_000_000)}
_STILL_FORMATS = frozenset({"image2", "gif", "apng"})  # and every "*_pipe" format
_DECODE_ATTEMPTS = 600  # packets fed to the decoder for the first frame at most
_INTERLACED_FIELD_ORDERS = frozenset({2, 3, 4, 5})  # AVFieldOrder TT, BB, TB, BT
_FULL_RANGE = 2  # AVColorRange AVCOL_RANGE_JPEG
# FFmpeg's names of the H.273 transfer characteristics: "smpte2084" (PQ HDR),
# "arib-std-b67" (HLG), "bt709".
_TRANSFERS = {
    t.value: t.name.lower().replace("_", "-") for t in ColorTrc if t.value != 2
}


# Tags that describe the file, not the patient: they may stay in an as-is file.
_FORMAT_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands",
                          "creation_time", "encoder", "software"})  # fmt: skip
_STREAM_TAGS = frozenset({"language", "vendor_id", "creation_time", "encoder",
                          "duration"})  # fmt: skip
# handler_name is free text: these are what devices and FFmpeg write.
_HANDLER_NAMES = frozenset({"VideoHandler", "SoundHandler", "Core Media Video",
                            "Core Media Audio"})  # fmt: skip


@dataclass(frozen=True)
class _Level:
    name: str
    level_idc: int  # the highest level_idc (H.264) or general_level_idc (HEVC)
    per_level: int  # level_idc units per level: 10 for H.264, 30 for HEVC
    block: int  # side of the unit pictures are counted in: 16 (macroblocks) or 1
    max_picture: int  # MaxFS (macroblocks) or MaxLumaPs; a side <= sqrt(8 * it)
    max_rate: int  # MaxMBPS, or MaxLumaSr: units per second
    max_picture_rate: int  # pictures per second
    max_bit_rate: int  # bit/s, for whole NAL units
    max_cpb: int  # bits


# ISO/IEC 14496-10 Annex A, Table A-1, Level 4.1, which PS3.5 8.2.7 requires the
# stream to be "compliant with": MaxFS, MaxMBPS, sides (A.3.1 and A.3.2); MaxBR
# 50 000 and MaxCPB 62 500 times cpbBrNalFactor 1 500 for High Profile (Table A-2);
# pictures at least 1/172 s apart (A.3.1 a).
_H264_41 = _Level("4.1", 41, 10, 16, 8_192, 245_760, 172, 75_000_000, 93_750_000)
# PS3.5 8.2.7 gives no size and rate table for this syntax: its Table 8-4 binds
# the BD-compatible one (1.2.840.10008.1.2.4.103) only, and Note 6 allows smaller
# pictures at higher rates (XGA up to 80 Hz) within Level 4.1.
# ITU-T H.265 A.4.1, Level 5.1 Main tier (PS3.5 8.2.10, 8.2.11: "Main tier ... up
# to 4k at 60 frames per second"): MaxLumaPs, MaxLumaSr, at most 300 pictures per
# second, MaxBR and MaxCPB 40 000 times CpbBrNalFactor 1 100 (Main, Main 10).
_HEVC_51 = _Level(
    "5.1", 153, 30, 1, 8_912_896, 534_773_760, 300, 44 * 10**6, 44 * 10**6
)
# High Profile and its subsets (profile_idc 100: Progressive and Constrained High
# only add constraint flags). Baseline and Main are NOT High Profile streams though
# every High decoder reads them: PS3.5 8.2.7 names the profile, so they are transcoded.
_H264_HIGH = frozenset({"High", "Progressive High", "Constrained High"})

# PS3.5 8.2.12, the MP4 column of its table (we always write MP4): sampling
# rates, channel counts and the highest bit rate of each allowed format. LPCM and
# AC-3 are allowed in an MPEG-2 Transport Stream only.
_MP4_AUDIO: dict[str, tuple[frozenset[int], frozenset[int], int]] = {
    "aac": (frozenset({48_000}), frozenset({2, 6}), 640_000),
    "mp3": (frozenset({32_000, 44_100, 48_000}), frozenset({1, 2}), 320_000),
    "mp2": (frozenset({32_000, 44_100, 48_000}), frozenset({2}), 384_000),
}


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a video file."""

    codec: str  # FFmpeg's canonical name: "aac", "mp3", "pcm_s16le"
    sample_rate: int
    channels: int
    bit_rate: int  # bit/s, 0 when the file does not say


@dataclass(frozen=True)
class VideoInfo:
    """What the video stream of a file really is, as read from the stream.

    ``width`` and ``height`` are the picture as stored, before ``display_rotation``,
    the clockwise turn (0, 90, 180, 270) that makes it upright. ``level`` is the
    stream's number (H.264 level_idc 41, HEVC general_level_idc 153 for 5.1), 0 if
    unknown. ``other_streams`` counts all but this video and the audio (timecode,
    data, subtitles, cover art); ``video_bytes`` sums the video packets.
    """

    container: str
    codec: str
    profile: str
    level: int
    pixel_format: str
    bit_depth: int
    chroma: str
    width: int
    height: int
    display_rotation: int
    sample_aspect_ratio: Fraction
    frame_rate: Fraction
    frame_count: int
    duration_seconds: float
    variable_frame_rate: bool
    interlaced: bool
    color_transfer: str
    audio: tuple[AudioTrack, ...]
    other_streams: int
    size_bytes: int
    video_bytes: int = 0
    high_tier: bool = False  # HEVC general_tier_flag, from the hvcC record
    full_range: bool = False  # samples span 0-255, as JPEG's do
    codec_tag: str = ""  # the sample entry: "avc1", "hvc1", "hev1"...
    leftovers: tuple[str, ...] = ()  # other tracks, and tags that may name someone
    indexed_frames: int = 0  # what the index lists, edit lists aside

    @property
    def audio_codecs(self) -> tuple[str, ...]:
        return tuple(track.codec for track in self.audio)


@dataclass(frozen=True)
class Classification:
    """How a stream may travel: its transfer syntax as it is, or why it must not."""

    transfer_syntax: str | None
    reasons: tuple[str, ...]  # why it must be transcoded; empty when it passes

    @property
    def passes_through(self) -> bool:
        return self.transfer_syntax is not None


def probe(path: Path) -> VideoInfo:
    """Read what the video in ``path`` is; InputRejected says why it is not one."""
    size = _size(path)
    container = _open(path)
    try:
        stream = _video_stream(path, container)
        info = _read_stream(path, container, stream, size)
    finally:
        container.close()
    logger.debug("probed a video: %s, %d frames", info.codec, info.frame_count)
    return info


def classify(info: VideoInfo) -> Classification:
    """Name the transfer syntax the stream already meets, or every reason it fails."""
    if info.codec == "h264":
        reasons, uid = _h264_reasons(info), MPEG4HP41
    elif info.codec == "hevc":
        reasons = _hevc_reasons(info)
        uid = HEVCM10P51 if info.profile == "Main 10" else HEVCMP51
    else:
        reasons, uid = (f"{info.codec} is not H.264 or HEVC",), MPEG4HP41
    reasons += _picture_reasons(info)
    return Classification(None if reasons else uid, reasons)


def audio_problems(info: VideoInfo) -> tuple[str, ...]:
    """Why the audio tracks may not stay in the MP4 as they are (PS3.5 8.2.12)."""
    problems = []
    for track in info.audio:
        allowed = _MP4_AUDIO.get(track.codec)
        if allowed is None:
            problems.append(f"{track.codec} audio is not AAC, MP3 or MPEG-1 Layer II")
            continue
        rates, channels, max_bit_rate = allowed
        if track.sample_rate not in rates:
            problems.append(f"{track.codec} audio at {track.sample_rate} Hz")
        if track.channels not in channels:
            problems.append(f"{track.codec} audio with {track.channels} channels")
        if track.bit_rate > max_bit_rate:
            problems.append(f"{track.codec} audio at {track.bit_rate // 1000} kbit/s")
    return tuple(problems)


def audio_allowed(info: VideoInfo) -> bool:
    """Whether every audio track may be kept as it is (True when there is none)."""
    return not audio_problems(info)


def _h264_reasons(info: VideoInfo) -> tuple[str, ...]:
    reasons = []
    if info.profile not in _H264_HIGH:
        reasons.append(f"H.264 {info.profile or 'unknown'} profile is not High Profile")
    if info.bit_depth != 8:
        reasons.append(f"{info.bit_depth}-bit samples: High Profile is 8-bit")
    return (*reasons, *_level_reasons(info, "H.264", _H264_41))


def _hevc_reasons(info: VideoInfo) -> tuple[str, ...]:
    reasons = []
    if info.profile not in ("Main", "Main 10"):
        reasons.append(f"HEVC {info.profile or 'unknown'} profile: not Main or Main 10")
    elif info.bit_depth != (10 if info.profile == "Main 10" else 8):
        # PS3.5 8.2.10: Bits Stored shall be 8 for Main; 8.2.11: 10 for Main 10.
        reasons.append(f"{info.bit_depth}-bit samples in a {info.profile} stream")
    if info.high_tier:
        reasons.append("HEVC High tier: Level 5.1 is carried in the Main tier")
    return (*reasons, *_level_reasons(info, "HEVC", _HEVC_51))


def _level_reasons(info: VideoInfo, codec: str, level: _Level) -> tuple[str, ...]:
    reasons = []
    if info.level > level.level_idc:
        reasons.append(f"{codec} level {_level(info, level)} is above {level.name}")

    sides = (ceil(info.width / level.block), ceil(info.height / level.block))
    picture = sides[0] * sides[1]
    size, rate = f"{info.width}x{info.height}", info.frame_rate
    if picture > level.max_picture or max(sides) ** 2 > 8 * level.max_picture:
        reasons.append(f"{size} is larger than Level {level.name}'s pictures")
    elif picture * rate > level.max_rate or rate > level.max_picture_rate:
        reasons.append(
            f"{size} at {_rate(rate)} frames/s is outside Level {level.name}'s "
            "resolutions and rates"
        )

    # A stream holds at most a full buffer plus MaxBR for its duration.
    bits, seconds = info.video_bytes * 8, info.duration_seconds
    if bits > level.max_cpb + level.max_bit_rate * seconds:
        mbits, limit = bits / max(seconds, 1e-3) / 1e6, level.max_bit_rate / 1e6
        reasons.append(
            f"{mbits:.1f} Mbit/s is above Level {level.name}'s {limit:g} Mbit/s"
        )
    return tuple(reasons)


def _picture_reasons(info: VideoInfo) -> tuple[str, ...]:
    # What every transfer syntax here shares (PS3.5 8.2.7, 8.2.10, 8.2.11): 4:2:0
    # (YBR_PARTIAL_420), square pixels (Pixel Aspect Ratio absent), and what a
    # viewer of the object needs: upright pictures at one frame rate.
    reasons = []
    if info.chroma != "4:2:0":
        reasons.append(f"{info.chroma or 'unknown'} chroma")
    if info.display_rotation:
        reasons.append(f"rotated {info.display_rotation}°: must be turned upright")
    if info.sample_aspect_ratio != 1:
        sar = info.sample_aspect_ratio
        reasons.append(f"non-square pixels {sar.numerator}:{sar.denominator}")
    if info.variable_frame_rate:
        reasons.append("variable frame rate")
    if info.full_range:
        # YBR_PARTIAL_420 says the samples have head- and footroom (PS3.3
        # C.7.6.3.1.2); a full-range stream would show with crushed blacks.
        reasons.append("full-range samples: YBR_PARTIAL_420 is limited range")
    return tuple(reasons)


def _level(info: VideoInfo, level: _Level) -> str:
    major, minor = divmod(info.level * 10 // level.per_level, 10)
    return f"{major}.{minor}".removesuffix(".0")


def _rate(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def _size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputRejected(path, f"cannot be read: {exc.strerror}") from exc
    if size == 0:
        raise InputRejected(path, "is empty, not a video")
    return size


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), options=_OPEN_OPTIONS, metadata_errors="replace")
    except av.error.InvalidDataError as exc:
        problem = "is not a video: FFmpeg knows no container format in it"
        if _is_iso_media(path):
            problem = "is an MP4 or QuickTime file, damaged or cut short"
        raise InputRejected(path, problem) from exc
    except OSError as exc:
        raise InputRejected(path, f"cannot be read: {exc.strerror}") from exc
    except av.FFmpegError as exc:
        raise InputRejected(path, f"cannot be read as a video: {exc.strerror}") from exc


def _is_iso_media(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(12)[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")


def _video_stream(path: Path, container: av.container.InputContainer) -> VideoStream:
    name = container.format.name
    if name in _STILL_FORMATS or name.endswith("_pipe"):
        raise InputRejected(path, "is a still image, not a video")
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise InputRejected(path, "has no video stream")


def _read_stream(
    path: Path, container: av.container.InputContainer, stream: VideoStream, size: int
) -> VideoInfo:
    times, count, video_bytes, first_frame = _demux(path, container, stream)
    duration, frame_rate, variable = _timing(times, count, stream)
    context = stream.codec_context
    pixel_format = context.format.name if context.format else ""
    bit_depth, chroma = _depth_and_chroma(pixel_format)
    rotation = (-first_frame.rotation) % 360
    interlaced = context.field_order in _INTERLACED_FIELD_ORDERS
    return VideoInfo(
        container=container.format.name,
        codec=stream.codec.canonical_name,
        profile=context.profile or "",
        level=max(context.level, 0),
        pixel_format=pixel_format,
        bit_depth=bit_depth,
        chroma=chroma,
        width=context.width,
        height=context.height,
        display_rotation=round(rotation / 90) % 4 * 90,
        sample_aspect_ratio=_sample_aspect_ratio(stream),
        frame_rate=frame_rate,
        frame_count=count,
        duration_seconds=float(duration),
        variable_frame_rate=variable,
        interlaced=interlaced or first_frame.interlaced_frame,
        color_transfer=_TRANSFERS.get(context.color_trc, ""),
        audio=tuple(_audio_track(s) for s in container.streams.audio),
        other_streams=len(container.streams) - len(container.streams.audio) - 1,
        size_bytes=size,
        video_bytes=video_bytes,
        high_tier=_hevc_high_tier(stream),
        full_range=context.color_range == _FULL_RANGE
        or pixel_format.startswith("yuvj"),
        codec_tag=context.codec_tag,
        leftovers=tuple(leftovers(container, stream)),
        indexed_frames=stream.frames,
    )


def _demux(
    path: Path, container: av.container.InputContainer, stream: VideoStream
) -> tuple[list[tuple[int, int]], int, int, VideoFrame]:
    """Count the video packets and bytes, keep their (pts, duration), and decode
    the first frame: PyAV shows the display matrix nowhere else."""
    times: list[tuple[int, int]] = []
    count = discarded = video_bytes = 0
    first: VideoFrame | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_discard:  # outside the edit list: never shown
                discarded += 1
                continue
            count += 1
            video_bytes += packet.size
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None:
                times.append((stamp, packet.duration or 0))
            if first is None and count <= _DECODE_ATTEMPTS:
                first = _first_frame(stream, packet)
        first = first or _first_frame(stream, None)
    except av.FFmpegError as exc:
        problem = f"has a damaged container: reading stopped after {count} frames"
        raise InputRejected(path, problem) from exc

    if count == 0:
        raise InputRejected(path, "has a video stream with no frames")
    if stream.frames and count + discarded < stream.frames:
        raise InputRejected(
            path,
            f"is damaged or cut short: its index lists {stream.frames} video frames "
            f"but only {count} can be read",
        )
    if first is None:
        raise InputRejected(path, "has a video stream of which no frame decodes")
    return times, count, video_bytes, first


def _first_frame(
    stream: VideoStream, packet: av.Packet[VideoStream] | None
) -> VideoFrame | None:
    try:
        frames = stream.codec_context.decode(packet)  # None drains the decoder
    except av.FFmpegError:
        return None  # e.g. a stream that starts before its first key frame
    return frames[0] if frames else None


def _timing(
    times: list[tuple[int, int]], count: int, stream: VideoStream
) -> tuple[Fraction, Fraction, bool]:
    """Duration in seconds, average frame rate, and whether the rate varies."""
    stamps = sorted(pts for pts, _ in times)
    deltas = [b - a for a, b in pairwise(stamps)]
    typical = statistics.median(deltas) if deltas else 0
    # Time bases round: 29.97 frames/s in milliseconds is 33 or 34 ms apart.
    variable = bool(deltas) and max(deltas) - min(deltas) > max(2, typical / 100)

    ends = [pts + (length or typical) for pts, length in times]
    ticks = max(ends) - stamps[0] if stamps else 0
    duration = Fraction(ticks) * (stream.time_base or 0)
    if duration <= 0:  # no usable time stamps: the stream's own nominal rate
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        return count / rate, rate, variable
    return duration, (count / duration).limit_denominator(1_001), variable


def _depth_and_chroma(pixel_format: str) -> tuple[int, str]:
    if not pixel_format:
        return 0, ""
    video_format = VideoFormat(pixel_format)
    depth = max(component.bits for component in video_format.components)
    if len(video_format.components) < 3:
        return depth, "4:0:0"
    sampling = (video_format.chroma_width(4), video_format.chroma_height(4))
    names = {(4, 4): "4:4:4", (2, 4): "4:2:2", (2, 2): "4:2:0", (1, 4): "4:1:1"}
    return depth, names.get(sampling, "4:1:0")


def _sample_aspect_ratio(stream: VideoStream) -> Fraction:
    # The container's (MP4 'pasp') and the bit stream's (VUI aspect_ratio_idc):
    # either being non-square makes the pixels non-square for some player.
    ratios = (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio)
    return next((Fraction(r) for r in ratios if r and r != 1), Fraction(1))


def _hevc_high_tier(stream: VideoStream) -> bool:
    # HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3): after the version
    # byte, general_profile_space (2 bits), general_tier_flag (1), profile (5).
    extradata = stream.codec_context.extradata or b""
    if stream.codec.canonical_name != "hevc" or len(extradata) < 2 or extradata[0] != 1:
        return False
    return bool(extradata[1] & 0x20)


def leftovers(container: av.container.InputContainer, video: VideoStream) -> list[str]:
    """The other tracks and the tags that might name the patient (names only)."""
    found = []
    for stream in container.streams:
        if stream is not video and stream.type != "audio":
            found.append(_track_kind(stream))
    tags = {name.lower() for name in container.metadata} - _FORMAT_TAGS
    for stream in (video, *container.streams.audio):
        names = {name.lower() for name in stream.metadata} - _STREAM_TAGS
        if stream.metadata.get("handler_name") in _HANDLER_NAMES:
            names.discard("handler_name")
        tags |= names
    if tags:
        found.append(f"metadata tags ({', '.join(sorted(tags))})")
    return found


def _track_kind(stream: av.stream.Stream) -> str:
    if stream.disposition & av.stream.Disposition.attached_pic:
        return "cover art"
    if "timecode" in stream.metadata:
        return "timecode track"
    return f"{stream.type} track"


def _audio_track(stream: av.audio.stream.AudioStream) -> AudioTrack:
    context = stream.codec_context
    return AudioTrack(
        codec=stream.codec.canonical_name,
        sample_rate=context.sample_rate or 0,
        channels=context.channels,
        bit_rate=context.bit_rate or 0,
    )
