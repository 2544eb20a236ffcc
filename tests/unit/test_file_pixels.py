"""A video's Pixel Data is read from its file as it is sent, and only as checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.uid import MPEG4HP41

from pacsbridge.dicom.encoding import FilePixels
from pacsbridge.media.kinds import is_video


def _pixels(path: Path) -> FilePixels:
    stat = path.stat()
    identity = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return FilePixels(path, stat.st_size, MPEG4HP41, identity)


def test_the_file_is_read_in_chunks_whole(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 5))

    parts = list(_pixels(path).parts())

    assert len(parts) == 4
    assert b"".join(parts) == path.read_bytes()


def test_a_file_changed_while_sent_stops_before_its_last_chunk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(bytes(3 * 1024 * 1024))
    parts = _pixels(path).parts()
    sent = [next(parts)]
    with path.open("r+b") as file:  # as `dd conv=notrunc` would: same size
        file.seek(100_000)
        file.write(b"X")
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock

    with pytest.raises(OSError, match=r"video\.mp4 has changed since it was checked"):
        sent.extend(parts)
    assert len(sent) == 2, "the last of three chunks never left"


def test_a_file_changed_before_it_is_sent_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(bytes(1024))
    pixels = _pixels(path)
    path.write_bytes(bytes(1025))

    with pytest.raises(OSError, match="has changed since it was checked"):
        next(pixels.parts())


def test_a_fifo_is_never_opened_to_sniff_it(tmp_path: Path) -> None:
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    assert is_video(fifo) is False  # and it returns: opening it would block
