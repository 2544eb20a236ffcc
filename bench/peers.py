"""Stock DCMTK for the benchmark: storescp receives, img2dcm and storescu send.

Everything runs as Debian ships it. In particular no ``TCP_NODELAY`` is put into the
DCMTK processes' environment: storescp then answers each C-STORE in two segments
with Nagle's algorithm on, and that is the peer a PACS user meets.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from timing import clean_env

STORESCP_AE = "STORESCP"
STOCK_PDU = 16384  # DCMTK's default maximum receive PDU
LARGE_PDU = 131072  # the largest DCMTK accepts for -pdu


class PeerError(RuntimeError):
    """A DCMTK tool did not start, failed, or did not store what it was sent."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    """Whether some socket listens on ``port``, read from /proc without connecting.

    Probing with a connection would show storescp an association that never
    comes, which it logs as an error.
    """
    hex_port = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(hex_port) and fields[3] == "0A":  # LISTEN
                    return True
    return False


class StoreSCP:
    """A stock ``storescp +xa`` on a free port, storing into ``out_dir``.

    Use it as a context manager: it is listening on entry and stopped on exit.
    ``max_pdu`` None keeps DCMTK's default (16 KiB).
    """

    def __init__(self, out_dir: Path, max_pdu: int | None = None) -> None:
        self.out_dir = out_dir
        self.max_pdu = max_pdu
        self.port = free_port()
        self.log = out_dir.parent / f"{out_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StoreSCP:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        argv = ["storescp", "+xa", "-aet", STORESCP_AE, "-od", str(self.out_dir)]
        if self.max_pdu is not None:
            argv += ["-pdu", str(self.max_pdu)]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [*argv, str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
            )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, timeout: float = 10.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self._process.poll() is not None:
                raise PeerError(f"storescp exited at start. {self.log_tail()}")
            if time.monotonic() > deadline:
                raise PeerError(f"storescp is not listening on {self.port}")
            time.sleep(0.02)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def received(self) -> list[Path]:
        """The files storescp has written so far."""
        return sorted(p for p in self.out_dir.iterdir() if p.is_file())

    def check_received(self, expected: int) -> int:
        """Stop unless exactly ``expected`` non-empty objects arrived; their bytes."""
        files = self.received()
        empty = [p for p in files if p.stat().st_size == 0]
        if len(files) != expected or empty:
            raise PeerError(
                f"storescp on port {self.port} stored {len(files)} objects "
                f"({len(empty)} empty), {expected} were sent. {self.log_tail()}"
            )
        return sum(p.stat().st_size for p in files)

    def log_tail(self, lines: int = 8) -> str:
        """The end of storescp's own output, for error messages."""
        with contextlib.suppress(OSError):
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
            return "storescp said: " + " | ".join(tail) if tail else ""
        return ""


def img2dcm_all(photos: Sequence[Path], out_dir: Path) -> list[Path]:
    """One img2dcm per photo, one after the other, as a shell loop would.

    The first photo sets patient, study and series; the others take them from it
    (``--series-from``), so that, as with PacsBridge, all land in one series.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for number, photo in enumerate(photos, start=1):
        target = out_dir / f"{number:05d}.dcm"
        argv = [
            "img2dcm",
            "-q",
            "-i",
            "JPEG",
            str(photo),
            str(target),
            "-k",
            f"InstanceNumber={number}",
        ]
        if made:
            argv += ["--series-from", str(made[0])]
        else:
            argv += ["-k", "PatientID=BENCH001", "-k", "PatientName=Bench^Mark"]
        _run(argv, f"img2dcm of {photo.name}")
        made.append(target)
    return made


def storescu_all(files: Sequence[Path], port: int, max_pdu: int | None) -> None:
    """Send ``files`` over one association with a stock storescu.

    ``-xy`` proposes JPEG Baseline (with the uncompressed syntaxes) and ``-R`` only
    the SOP classes the files need; without ``-xy`` storescu would try to
    decompress each JPEG to Explicit VR Little Endian and fail.
    """
    _run(storescu_argv(files, port, max_pdu, "-xy"), "storescu")


def storescu_argv(
    files: Sequence[Path], port: int, max_pdu: int | None, propose: str
) -> list[str]:
    """The storescu command that sends ``files`` to the storescp on ``port``.

    ``propose`` is the option naming the compressed transfer syntax the files are
    in: ``-xy`` for JPEG Baseline, ``-xn`` for MPEG-4 AVC/H.264 High Profile /
    Level 4.1. Without the right one storescu would try to decompress them.
    """
    argv = ["storescu", "-q", propose, "-R", "-aec", STORESCP_AE]
    if max_pdu is not None:
        argv += ["-pdu", str(max_pdu)]
    return [*argv, "127.0.0.1", str(port), *map(str, files)]


def _run(argv: Sequence[str], what: str) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, env=clean_env(), check=False
    )
    if done.returncode != 0:
        raise PeerError(
            f"{what} exited with {done.returncode}: {done.stderr.strip()[-500:]}"
        )


def dcmtk_version() -> str:
    """The DCMTK version storescp reports, e.g. ``3.6.7``."""
    done = subprocess.run(
        ["storescp", "--version"], capture_output=True, text=True, check=False
    )
    first = (done.stdout or done.stderr).splitlines()[:1]
    words = first[0].split() if first else []
    return words[2] if len(words) > 2 else "unknown"
