"""Video: make a probed video into an MP4 that a video transfer syntax takes.

:func:`prepare_video` takes the least invasive of three paths. A stream that meets
its transfer syntax (:func:`~pacsbridge.media.video.classify`) is used **as is**
only in a plain MP4: an ISO BMFF file whose brand is not QuickTime's 'qt  '
(PS3.5 8.2.12 names MP4, ISO/IEC 14496-14), holding only the video and audio
8.2.12 allows, only boxes a plain MP4 has, tags that describe the file (brand,
creation time, encoder), and no frames hidden by an edit list. Otherwise the
stream is **remuxed**: its video packets copied untouched into a new MP4, on an
exact grid of its frame rate, audio copied or re-encoded to AAC, nothing else
kept. Any other stream is **transcoded** to H.264 High Profile Level 4.1 (PS3.5
8.2.7): upright, square pixels, constant rate, 8-bit SDR, within Level 4.1.
:func:`split_video` cuts a prepared file too large for one object.

Everything streams, packets in and packets out, into a ``.partial`` file that is
renamed only once probe() and classify() accept it. Outputs start at zero and
their frame count is what probe() counts, for Number of Frames. No metadata value
is logged or named: a title may hold patient data.
"""

from __future__ import annotations

import logging
import os
import tempfile
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer, OutputContainer
from av.stream import Disposition
from pydicom.uid import UID

from pacsbridge.config import VideoSettings
from pacsbridge.errors import InputRejected
from pacsbridge.media.containers import as_is_reasons
from pacsbridge.media.tonemap import PictureEncoder, plan_pictures
from pacsbridge.media.video import VideoInfo, audio_problems, classify, leftovers, probe

logger = logging.getLogger(__name__)

AAC_BIT_RATE = 192_000

_OPEN_OPTIONS = {"probesize": str(10_000_000), "analyzeduration": str(10_000_000)}
_NO_PRESENTATION_TIMES = frozenset({"avi"})
_MP4_OPTIONS = {"movflags": "+faststart"}  # moov first: viewers start at once
# What a part's index costs beyond its samples: the sample tables (sizes, times,
# offsets) take at most this per sample, the other boxes well under the header.
_SAMPLE_INDEX_BYTES, _HEADER_BYTES = 16, 4_096


@dataclass(frozen=True)
class PreparedVideo:
    """An MP4 ready to be wrapped, what it is, and what was done to make it."""

    file: Path  # the input itself when used as is, else a new file in work_dir
    info: VideoInfo  # probe() of ``file``
    transfer_syntax: UID
    path_taken: str  # "as-is" | "remuxed" | "transcoded"
    reasons: tuple[str, ...]  # why it was remuxed or transcoded
    notes: tuple[str, ...]  # what changed for the user


def prepare_video(
    path: Path, info: VideoInfo, settings: VideoSettings, work_dir: Path
) -> PreparedVideo:
    """Use, remux or transcode the video in ``path``, probed as ``info``.

    InputRejected says why no MP4 that meets a transfer syntax could be made.
    """
    classification = classify(info)
    reasons = classification.reasons
    if classification.transfer_syntax is not None:
        reasons, hidden = as_is_reasons(path, info)
        if not reasons:
            uid = UID(classification.transfer_syntax)
            return PreparedVideo(path, info, uid, "as-is", (), ())
        if info.container in _NO_PRESENTATION_TIMES:
            # AVI stores decode order only: a copy of a stream with B-frames
            # would show its frames out of order. Decoding puts them right.
            reasons = (*reasons, "AVI keeps no presentation times")
        elif not hidden:
            return _remux(path, info, reasons, work_dir)
    return _transcode(path, info, reasons, settings, work_dir)


def split_video(
    prepared: PreparedVideo, max_bytes: int, work_dir: Path
) -> list[PreparedVideo]:
    """Cut ``prepared`` at key frames into MP4s of at most ``max_bytes`` each.

    Each part is a remux that plays on its own, its times starting at zero. A
    group of pictures larger than ``max_bytes`` stays whole, in a larger part;
    ``prepared`` itself comes back if it is small enough or cannot be cut.
    """
    if prepared.file.stat().st_size <= max_bytes:
        return [prepared]
    starts = _part_starts(prepared.file, max_bytes)
    if len(starts) < 2:
        return [prepared]

    file = prepared.file
    targets = [
        _reserve(work_dir, file.stem, f"part{n + 1}") for n in range(len(starts))
    ]
    with _writing(file, "cut into parts", targets):
        with _open(file) as container:
            _write_parts(file, container, starts, targets)
        failure = "could not be cut into conforming parts"
        written = [_finish(file, target, failure) for target in targets]
    taken = "remuxed" if prepared.path_taken == "as-is" else prepared.path_taken
    reasons = (*prepared.reasons, f"more than {max_bytes} bytes: cut at key frames")
    count = len(targets)
    notes = [(*prepared.notes, f"part {n} of {count}") for n in range(1, count + 1)]
    return [
        PreparedVideo(target, info, uid, taken, reasons, part_notes)
        for target, (info, uid), part_notes in zip(targets, written, notes, strict=True)
    ]


def _part_starts(file: Path, max_bytes: int) -> list[Fraction]:
    """When (in seconds) each part starts: at a key frame, filled greedily."""
    groups: list[tuple[Fraction, list[int]]] = []  # start and bytes of each GOP
    audio: list[tuple[float, int]] = []
    with _open(file) as container:
        video = _video_stream(file, container)
        for packet in container.demux():
            if not packet.size or packet.pts is None:
                continue
            if packet.stream is video:
                if packet.is_keyframe or not groups:
                    groups.append((packet.pts * packet.time_base, [0]))
                groups[-1][1][0] += packet.size + _SAMPLE_INDEX_BYTES
            else:
                seconds = float(packet.pts * packet.time_base)
                audio.append((seconds, packet.size + _SAMPLE_INDEX_BYTES))
    times = [float(start) for start, _ in groups]
    for seconds, size in audio:
        groups[max(0, bisect_right(times, seconds) - 1)][1][0] += size

    starts: list[Fraction] = []
    used = 0
    for start, (size,) in groups:
        if not starts or used + size > max_bytes - _HEADER_BYTES:
            starts.append(start)
            used = 0
        used += size
    return starts


def _write_parts(
    file: Path, container: InputContainer, starts: list[Fraction], targets: list[Path]
) -> None:
    """One pass over the packets, each part open from its first packet until
    every stream has moved past it."""
    video = _video_stream(file, container)
    outputs: dict[int, tuple[OutputContainer, dict[int, av.stream.Stream]]] = {}
    reached = {stream.index: 0 for stream in (video, *container.streams.audio)}
    closed = 0
    for packet in container.demux(video, *container.streams.audio):
        if not packet.size or packet.pts is None:
            continue
        index = packet.stream.index
        part = max(0, bisect_right(starts, packet.pts * packet.time_base) - 1)
        if packet.stream is video:  # decode order: B-frames come after their key
            part = max(part, reached[index])
        reached[index] = part
        if part not in outputs:
            outputs[part] = _open_part(targets[part], container, video)
        out, streams = outputs[part]
        offset = round(starts[part] / packet.time_base)
        packet.pts -= offset
        if packet.dts is not None:
            packet.dts -= offset
        packet.stream = streams[index]
        out.mux(packet)
        while closed < min(reached.values()):
            outputs.pop(closed)[0].close()
            closed += 1
    for out, _ in outputs.values():
        out.close()


def _open_part(
    target: Path, container: InputContainer, video: av.VideoStream
) -> tuple[OutputContainer, dict[int, av.stream.Stream]]:
    out = _create(target)
    streams: dict[int, av.stream.Stream] = {
        video.index: out.add_stream_from_template(video)
    }
    if video.codec.canonical_name == "hevc":
        streams[video.index].codec_context.codec_tag = "hvc1"
    for stream in container.streams.audio:
        streams[stream.index] = out.add_stream_from_template(stream)
    return out, streams


def _remux(
    path: Path, info: VideoInfo, reasons: tuple[str, ...], work_dir: Path
) -> PreparedVideo:
    target = _reserve(work_dir, path.stem, "remuxed")
    with (
        _writing(path, "remuxed", [target]),
        _open(path) as container,
        _create(target) as out,
    ):
        video = _video_stream(path, container)
        copy = out.add_stream_from_template(video, time_base=1 / info.frame_rate)
        if info.codec == "hevc":
            # ISO/IEC 14496-15 'hvc1': parameter sets in the sample entry; the
            # sample entry Apple's players and many viewers require.
            copy.codec_context.codec_tag = "hvc1"
        origin = _origin(container)
        audio = _Audio(info, container, out, origin)
        frames, waiting = 0, []
        for packet in container.demux(video, *audio.sources):
            if packet.stream is not video:
                audio.handle(packet)
            elif packet.size:
                frames += 1
                packet.stream = copy
                waiting.append(packet)
                if packet.dts is not None:
                    _mux_video(out, waiting, info.frame_rate, origin)
        _mux_video(out, waiting, info.frame_rate, origin)
        audio.flush()
        _check_count(path, info, frames)
        notes = (*audio.notes, *_dropped(container, video))
    info, uid = _finish(path, target, "could not be remuxed into a conforming MP4")
    return PreparedVideo(target, info, uid, "remuxed", reasons, notes)


def _mux_video(
    out: OutputContainer,
    waiting: list[av.Packet[av.stream.Stream]],
    rate: Fraction,
    origin: Fraction,
) -> None:
    """Mux copied video packets on the grid of their constant rate.

    Matroska has no decode times for the first frames of a stream with B-frames,
    and MP4 needs them: count back from the first known one, a frame apart. Then
    times rounded to a coarse time base (1 ms: 33, 34, 33 ms) go back onto the
    grid they were rounded from, so the MP4 shows one frame rate, not jitter.
    """
    known = waiting[-1].dts if waiting else None
    for back, packet in enumerate(reversed(waiting[:-1]), 1):
        if known is not None:
            packet.dts = known - round(back / rate / packet.time_base)
    for packet in waiting:
        pts = packet.pts if packet.pts is not None else packet.dts
        dts = packet.dts if packet.dts is not None else pts  # shown as decoded
        assert pts is not None and dts is not None
        packet.pts = round((pts * packet.time_base - origin) * rate)
        packet.dts = round((dts * packet.time_base - origin) * rate)
        packet.duration = 1
        packet.time_base = 1 / rate
        out.mux(packet)
    waiting.clear()


def _transcode(
    path: Path,
    info: VideoInfo,
    reasons: tuple[str, ...],
    settings: VideoSettings,
    work_dir: Path,
) -> PreparedVideo:
    target = _reserve(work_dir, path.stem, "transcoded")
    with (
        _writing(path, "transcoded", [target]),
        _open(path) as container,
        _create(target) as out,
    ):
        video = _video_stream(path, container)
        plan = plan_pictures(info, work_dir)
        origin = _origin(container)
        encoder = PictureEncoder(
            plan, video, out, settings.quality, settings.preset, origin
        )
        audio = _Audio(info, container, out, origin)
        frames = 0
        for packet in container.demux(video, *audio.sources):
            if packet.stream is not video:
                audio.handle(packet)
            elif packet.size:
                frames += not packet.is_discard
                encoder.feed(packet)
        encoder.flush()
        audio.flush()
        _check_count(path, info, frames)
        notes = (*plan.notes, *audio.notes, *_dropped(container, video))
    failure = "could not be made into an H.264 High Profile Level 4.1 video"
    info, uid = _finish(path, target, failure)
    return PreparedVideo(target, info, uid, "transcoded", reasons, notes)


def _origin(container: InputContainer) -> Fraction:
    """When the file starts: MPEG program and transport streams seldom start at
    zero, and what starts late in an MP4 opens with an empty edit that long."""
    return max(Fraction(container.start_time or 0, av.time_base), Fraction(0))


def _dropped(container: InputContainer, video: av.VideoStream) -> list[str]:
    return [f"{kind.split(' (')[0]} dropped" for kind in leftovers(container, video)]


def _check_count(path: Path, info: VideoInfo, frames: int) -> None:
    # Fewer packets than probe() counted: the file was cut short or changed since.
    if frames < info.frame_count:
        raise InputRejected(
            path,
            f"is damaged or cut short: {frames} of its {info.frame_count} video "
            "frames could be read",
        )


class _Audio:
    """Each audio track: copied if PS3.5 8.2.12 allows it in MP4, else AAC."""

    def __init__(
        self,
        info: VideoInfo,
        container: InputContainer,
        out: OutputContainer,
        origin: Fraction,
    ) -> None:
        self._out, self._origin = out, origin
        self.sources: list[av.AudioStream] = []
        self.notes: list[str] = []
        self._copies: dict[int, av.stream.Stream] = {}
        self._encoders: dict[int, tuple[av.AudioStream, av.AudioStream]] = {}
        for track, stream in zip(info.audio, container.streams.audio, strict=True):
            # MPEG-1 Layer II is allowed (PS3.5 8.2.12) but few MP4 players play
            # it, and FFmpeg reads it back from MP4 as MP3, whose limits differ.
            if track.codec != "mp2" and not audio_problems(
                replace(info, audio=(track,))
            ):
                self._copies[stream.index] = out.add_stream_from_template(stream)
            elif stream.codec_context is None:
                self.notes.append(f"audio dropped: {track.codec} cannot be decoded")
                continue
            else:
                # AAC-LC, 48 kHz, stereo: allowed in MP4 by PS3.5 8.2.12.
                aac = out.add_stream("aac", rate=48_000, layout="stereo")
                aac.codec_context.bit_rate = AAC_BIT_RATE
                self._encoders[stream.index] = (stream, aac)
                self.notes.append("audio re-encoded to AAC")
            self.sources.append(stream)

    def handle(self, packet: av.Packet[av.stream.Stream]) -> None:
        index = packet.stream.index
        if not packet.size:
            return
        shift = round(self._origin / packet.time_base)
        if index in self._copies:
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = self._copies[index]
            self._out.mux(packet)
        else:
            self._encode(*self._encoders[index], packet)

    def flush(self) -> None:
        for source, aac in self._encoders.values():
            self._encode(source, aac, None)
            self._out.mux(aac.encode(None))

    def _encode(
        self,
        source: av.AudioStream,
        aac: av.AudioStream,
        packet: av.Packet[av.stream.Stream] | None,
    ) -> None:
        for frame in source.decode(packet):
            if frame.pts is not None and frame.time_base:
                frame.pts -= round(self._origin / frame.time_base)
            self._out.mux(aac.encode(frame))


def _reserve(work_dir: Path, stem: str, kind: str) -> Path:
    """A new file name in work_dir: the inputs of one job may share a name."""
    handle, name = tempfile.mkstemp(
        prefix=f"{stem}.", suffix=f".{kind}.mp4", dir=work_dir
    )
    os.close(handle)
    return Path(name)


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def _create(target: Path) -> OutputContainer:
    return av.open(str(_partial(target)), "w", format="mp4", options=_MP4_OPTIONS)


def _remove(targets: list[Path]) -> None:
    for target in targets:
        target.unlink(missing_ok=True)
        _partial(target).unlink(missing_ok=True)


@contextmanager
def _writing(path: Path, action: str, targets: list[Path]) -> Iterator[None]:
    """Remove the targets and their partial files if anything goes wrong."""
    try:
        yield
    except av.FFmpegError as exc:
        _remove(targets)
        reported = exc.strerror or ""
        if not reported or reported.startswith("Error number"):
            # FFmpeg has no words for it: in practice damaged data.
            problem = f"could not be {action}: it is damaged (FFmpeg cannot read it)"
        else:
            problem = f"could not be {action}: FFmpeg reported {reported}"
        raise InputRejected(path, problem) from exc
    except BaseException:
        _remove(targets)
        raise


def _finish(path: Path, target: Path, failure: str) -> tuple[VideoInfo, UID]:
    """Probe and classify what was written; keep it only if it passes."""
    partial = _partial(target)
    try:
        info = probe(partial)
        classification = classify(info)
        problems = classification.reasons + audio_problems(info)
    except InputRejected as exc:
        problems = (exc.problem,)
    if problems or classification.transfer_syntax is None:
        _remove([target])
        raise InputRejected(path, f"{failure}: " + "; ".join(problems))
    partial.replace(target)
    # No file names: a nurse's file name may be the patient's.
    logger.info("wrote a video of %d frames", info.frame_count)
    return info, UID(classification.transfer_syntax)


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), options=_OPEN_OPTIONS, metadata_errors="replace")
    except OSError as exc:
        raise InputRejected(path, f"cannot be read: {exc.strerror}") from exc
    except av.FFmpegError as exc:
        raise InputRejected(path, f"cannot be read as a video: {exc.strerror}") from exc


def _video_stream(path: Path, container: InputContainer) -> av.VideoStream:
    # The stream probe() describes: the first one that is not cover art.
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    raise InputRejected(path, "has no video stream")
