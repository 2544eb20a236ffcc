"""Stills and videos are told apart by their first bytes, never by their names."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pacsbridge.media.kinds import is_video
from tests.unit import imagegen as gen


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "head", "video"),
    [
        ("iphone.mov", _ftyp(b"qt  ", b"qt  "), True),
        ("camera.mp4", _ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), True),
        ("clip.m4v", _ftyp(b"M4V ", b"M4V ", b"M4A ", b"mp42"), True),
        ("phone.3gp", _ftyp(b"3gp4", b"isom"), True),
        ("old.mov", b"\x00\x00\x00\x08wide" + b"\x00" * 64, True),
        ("scope.mkv", b"\x1a\x45\xdf\xa3" + b"\x00" * 64, True),
        ("scope.avi", b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 64, True),
        ("tower.mpg", b"\x00\x00\x01\xba" + b"\x00" * 64, True),
        ("tower.ts", (b"\x47" + b"\x00" * 187) * 3, True),
        ("photo.heic", _ftyp(b"heic", b"mif1", b"heic"), False),
        ("burst.heics", _ftyp(b"msf1", b"msf1", b"hevc"), False),
        ("photo.avif", _ftyp(b"avif", b"avif", b"mif1"), False),
        # A still's name does not make it one, nor a video's name a video.
        ("photo.mp4", gen.encoded(gen.gradient(16, 16), "PNG"), False),
        ("movie.jpg", _ftyp(b"isom", b"isom"), True),
        ("webp.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64, False),
        ("short.mp4", b"\x00\x00", False),
        ("empty.mov", b"", False),
    ],
)
def test_a_file_is_a_video_by_its_content(
    tmp_path: Path, name: str, head: bytes, video: bool
) -> None:
    path = tmp_path / name
    path.write_bytes(head)
    assert is_video(path) is video


def test_an_unreadable_file_is_left_to_the_stills_reader(tmp_path: Path) -> None:
    assert is_video(tmp_path / "missing.mp4") is False
    assert is_video(tmp_path) is False
