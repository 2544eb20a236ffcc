"""What the photo and video benchmarks share: their setup, scratch folders, retries,
measured ``pacsbridge`` runs, its configuration, and the header of their output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import loopback
import peers
import report
import timing
from report import Figure

BENCH = Path(__file__).resolve().parent
PACSBRIDGE = BENCH.parent / ".venv" / "bin" / "pacsbridge"
PATIENT = ["--patient-id", "BENCH001", "--patient-name", "Bench^Mark"]


class BenchFailure(RuntimeError):
    """A measured command failed; the run goes on and reports it."""


@dataclass(frozen=True)
class Setup:
    """What every measurement shares: the inputs and where to put what it receives."""

    inputs: list[Path]
    work: Path
    use_gnu_time: bool
    repeat: int = 1


def write_config(path: Path, port: int, max_pdu: int, more: str = "") -> Path:
    """The TOML that points pacsbridge at the storescp of one measurement.

    ``more`` is appended as it is: further sections, such as ``[video]``.
    """
    path.write_text(
        "[local]\n"
        'ae_title = "PACSBRIDGE"\n'
        f"max_pdu = {max_pdu}\n"
        "\n[[destinations]]\n"
        'name = "bench"\n'
        'kind = "dicom"\n'
        f'ae_title = "{peers.STORESCP_AE}"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n" + more
    )
    return path


def run_pacsbridge(setup: Setup, args: list[str], cwd: Path) -> timing.Measured:
    """Run the installed ``pacsbridge`` command with ``args``, measured."""
    return timing.run_measured(
        [str(PACSBRIDGE), *args],
        cwd=cwd,
        env=timing.clean_env(),
        use_gnu_time=setup.use_gnu_time,
    )


def measure_startup(setup: Setup) -> Figure:
    """The best of three ``pacsbridge version``: start-up paid once per send."""
    runs = [run_pacsbridge(setup, ["version"], setup.work) for _ in range(3)]
    best = min(runs, key=lambda r: r.seconds)
    if best.returncode != 0:
        raise BenchFailure(f"pacsbridge version exited with {best.returncode}")
    note = "best of 3, included in each send"
    label = "pacsbridge start-up (version)"
    return Figure(label, best.seconds, 0, 0, best.peak_rss_kib, best.cpu_seconds, note)


@contextlib.contextmanager
def scratch(setup: Setup, name: str) -> Iterator[Path]:
    """A fresh folder under the work folder, removed afterwards.

    Dirty pages of the previous measurement are flushed first, so that one
    measurement's write-back does not land in the next one's time.
    """
    os.sync()
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=setup.work.resolve()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def attempt(
    setup: Setup, label: str, measure: Callable[[], Figure | list[Figure]]
) -> list[Figure]:
    """Run one measurement ``setup.repeat`` times and keep the best of each figure.

    A failure in any round becomes a figure that says what went wrong.
    """
    rounds: list[list[Figure]] = []
    for number in range(1, setup.repeat + 1):
        print(f"measuring: {label} ({number}/{setup.repeat})", file=sys.stderr,
              flush=True)  # fmt: skip
        try:
            done = measure()
        except (BenchFailure, peers.PeerError, loopback.LoopbackError, OSError) as exc:
            return [Figure(label, None, 0, 0, error=str(exc))]
        rounds.append(done if isinstance(done, list) else [done])
    return report.best_of(rounds)


def total_size(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def print_environment(setup: Setup, writers: str) -> None:
    """The header lines after the inputs': where files go, the machine, the code.

    ``writers`` names what writes into the work folder, e.g. "storescp and the
    loopback copy".
    """
    rss = "GNU time -v" if setup.use_gnu_time else "getrusage(RUSAGE_CHILDREN)"
    print(f"received in {setup.work}, on {_filesystem(setup.work)}")
    print(f"            ({writers} all write there)")
    print(
        f"machine     {os.cpu_count()} cores; DCMTK {peers.dcmtk_version()}, "
        f"stock storescp, no TCP_NODELAY; peak RSS by {rss}"
    )
    print(f"pacsbridge  {_source_state()}")
    print(f"load        {load_average()} (1-minute average) at the start")
    rounds = "1 round" if setup.repeat == 1 else f"best of {setup.repeat} rounds"
    print(f"timing      {rounds}; peak RSS the largest of all rounds")


def _filesystem(path: Path) -> str:
    """The mount that holds ``path``: mount point, type and device."""
    best = ("/", "?", "?")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype = line.split()[:3]
            inside = path == Path(mount) or Path(mount) in path.parents
            if inside and len(mount) >= len(best[0]):
                best = (mount, fstype, device)
    return f"{best[0]} ({best[1]} on {best[2]})"


def _source_state() -> str:
    """Which pacsbridge was measured: the install is editable, so its git state."""
    repo = str(BENCH.parent)
    head = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%h %cI"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if head.returncode != 0:
        return "not in a git work tree"
    changes = "with uncommitted changes in src/" if dirty.stdout.strip() else "clean"
    return f"commit {head.stdout.strip()}, {changes}"


def load_average() -> str:
    """The load average: other work on the machine makes every figure noisier."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--work-dir, --repeat and --no-gnu-time, as every benchmark takes them."""
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=BENCH / "out",
        help="where received files go (default: bench/out)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each measurement N times and keep the fastest (default: 1)",
    )
    parser.add_argument(
        "--no-gnu-time",
        action="store_true",
        help="measure peak RSS with getrusage even if GNU time is installed",
    )
