"""Whether a video file may be used as it is: its tracks, tags and boxes.

A stream that meets its transfer syntax still travels in its file only when the
file is a plain MP4 (ISO/IEC 14496-14; PS3.5 8.2.12 names MP4): only the video and
the audio 8.2.12 allows, only the boxes a plain MP4 has, only tags that describe
the file. A title, a comment or an XMP box may name the patient; their names are
reported, never their values.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pacsbridge.media.video import VideoInfo, audio_problems

# ISO/IEC 14496-12 boxes of a plain MP4. Anything else (uuid boxes with XMP, user
# data no demuxer shows as a tag, movie fragments) is left behind by a remux.
_TOP_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"})
_MOOV_BOXES = frozenset({b"mvhd", b"trak", b"udta", b"meta", b"iods"})


def as_is_reasons(path: Path, info: VideoInfo) -> tuple[tuple[str, ...], bool]:
    """Why a conforming stream cannot stay in its file as it is, if it cannot,
    and whether an edit list hides frames, which a remux would show."""
    mp4 = info.container.startswith("mov,mp4")
    reasons = [*audio_problems(info)]
    if mp4:
        reasons += _box_reasons(path)
    else:
        reasons.append(f"{info.container.split(',')[0]} container, not MP4")
    if mp4 and info.codec_tag not in ("avc1", "avc3", "hvc1"):
        tag = _printable(info.codec_tag.encode())
        reasons.append(f"'{tag}' sample entry")  # hev1
    reasons += info.leftovers
    # probe() counts the frames shown: the sample table may hold more.
    hidden = max(0, info.indexed_frames - info.frame_count)
    if hidden:
        reasons.append(f"an edit list hides {hidden} of its frames")
    return tuple(reasons), bool(hidden)


def _box_reasons(path: Path) -> list[str]:
    """What in the ISO BMFF box structure keeps the file from being used as is."""
    with path.open("rb") as file:
        top = list(_boxes(file, 0, file.seek(0, 2)))
        if not top or top[0][0] != b"ftyp":
            return ["no file type box at the start"]
        file.seek(top[0][1])
        if file.read(4) == b"qt  ":
            # QuickTime, not ISO/IEC 14496-14: PS3.5 8.2.12 names MP4.
            return ["QuickTime container, not MP4"]
        odd = [kind for kind, _, _ in top if kind not in _TOP_BOXES]
        for _, start, end in (box for box in top if box[0] == b"moov"):
            for kind, inner, stop in _boxes(file, start, end):
                if kind not in _MOOV_BOXES:
                    odd.append(kind)
                elif kind == b"udta":  # its meta holds the tags FFmpeg shows
                    odd += [k for k, _, _ in _boxes(file, inner, stop) if k != b"meta"]
    return [f"a '{_printable(kind)}' box" for kind in odd]


def _boxes(file: BinaryIO, start: int, stop: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each box from start to stop."""
    while start + 8 <= stop:
        file.seek(start)
        header = file.read(16)
        size, kind = struct.unpack(">I4s", header[:8])
        offset = 8
        if size == 1 and len(header) == 16:
            size, offset = struct.unpack(">Q", header[8:])[0], 16
        elif size == 0:  # the last box, to the end of the file
            size = stop - start
        if size < offset or start + size > stop:
            yield b"????", start, stop
            return
        yield kind, start + offset, start + size
        start += size


def _printable(kind: bytes) -> str:
    return kind.decode("latin-1") if kind.isascii() and kind.isalnum() else "?"
