"""The floor: copy the photos' bytes over loopback TCP into files, with no DICOM.

A receiver process writes each record of a stream of (8-byte length, bytes) records
into a file of its own, like storescp does with each object; a sender reads every
photo and sends it over one connection. The time from connecting to the receiver's
acknowledgement, after its last file is closed, is what any sender to a local PACS
has to pay at least.

Run as a script it is the receiver: ``python loopback.py DIR`` prints its port, takes
one connection, then prints how many files it wrote.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_HEADER = struct.Struct(">Q")
_CHUNK = 1 << 20
_DONE = b"K"


class LoopbackError(RuntimeError):
    """The receiver did not start or did not write every file."""


def serve_once(out_dir: Path) -> int:
    """Receive one connection's records into ``out_dir``; the number of files."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        print(server.getsockname()[1], flush=True)
        conn, _ = server.accept()
    with conn:
        count = _receive_records(conn, out_dir)
        conn.sendall(_DONE)
    return count


def _receive_records(conn: socket.socket, out_dir: Path) -> int:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    count = 0
    while True:
        (length,) = _HEADER.unpack(_recv_exactly(conn, _HEADER.size))
        if length == 0:
            return count
        count += 1
        with (out_dir / f"{count:05d}.bin").open("wb") as out:
            while length:
                got = conn.recv_into(view, min(length, _CHUNK))
                if not got:
                    raise LoopbackError("the sender closed the connection mid-record")
                out.write(view[:got])
                length -= got


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise LoopbackError("the sender closed the connection mid-header")
        data += chunk
    return data


def copy_over_loopback(photos: Sequence[Path], out_dir: Path) -> float:
    """Copy ``photos`` into ``out_dir`` through a receiver process; the seconds taken.

    The receiver's start-up is not timed; every byte sent is checked to have landed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    receiver = subprocess.Popen(
        [sys.executable, __file__, str(out_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    try:
        port = int(receiver.stdout.readline())
        seconds = _send(photos, port)
        written = int(receiver.stdout.readline() or -1)
    finally:
        receiver.wait(timeout=30)

    _check_copies(photos, out_dir, written)
    return seconds


def _send(photos: Sequence[Path], port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for photo in photos:
            data = photo.read_bytes()
            conn.sendall(_HEADER.pack(len(data)))
            conn.sendall(data)
        conn.sendall(_HEADER.pack(0))
        if conn.recv(1) != _DONE:
            raise LoopbackError("the receiver did not acknowledge the end")
    return time.perf_counter() - started


def _check_copies(photos: Sequence[Path], out_dir: Path, written: int) -> None:
    copies = sorted(out_dir.glob("*.bin"))
    sizes = [p.stat().st_size for p in copies]
    expected = [p.stat().st_size for p in photos]
    if written != len(photos) or sizes != expected:
        raise LoopbackError(
            f"the loopback receiver wrote {len(copies)} files, "
            f"{len(photos)} were sent, or their sizes differ"
        )


if __name__ == "__main__":
    print(serve_once(Path(sys.argv[1])), flush=True)
