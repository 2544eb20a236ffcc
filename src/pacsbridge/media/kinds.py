"""Whether an input file is a still or a video, told from its first bytes.

The file's name is not trusted: a phone names HEIC stills and MOV videos alike,
and both HEIC and MP4 are ISO base media files. Anything not recognised as a
video goes to the stills reader, whose error names the problem.
"""

from __future__ import annotations

import stat
from pathlib import Path

# ISO/IEC 23008-12 (HEIF) and AV1 image brands: stills, even when they hold an
# image sequence (the first picture is taken, like a GIF's first frame).
_STILL_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2",
     b"msf1", b"avif", b"avis", b"avci", b"jpeg"}
)  # fmt: skip
# QuickTime files from before 'ftyp' start with one of these atoms.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_SNIFF = 512
_TS_PACKET = 188


def is_video(path: Path) -> bool:
    """True when ``path`` starts like a video container FFmpeg reads."""
    try:
        # Only a regular file is opened: a FIFO would block the open for ever.
        if not stat.S_ISREG(path.stat().st_mode):
            return False  # the stills reader says what it is instead
        with path.open("rb") as file:
            head = file.read(_SNIFF)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False  # the stills reader says why it cannot be read
    return _looks_like_video(head)


def _looks_like_video(head: bytes) -> bool:
    if head[4:8] == b"ftyp":
        return head[8:12] not in _STILL_BRANDS
    if head[4:8] in _QUICKTIME_ATOMS:
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, WebM
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):  # MPEG PS, ES
        return True
    if head.startswith((b"FLV", b"OggS", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")):
        return True
    # MPEG transport stream: a sync byte every 188 bytes.
    return len(head) > 2 * _TS_PACKET and all(
        head[i] == 0x47 for i in range(0, 3 * _TS_PACKET, _TS_PACKET)
    )
