"""One benchmark run of ``pacsbridge send``: against stock DCMTK and a plain copy.

Each measurement stores the same photos into a fresh stock ``storescp`` (or, for the
floor, a plain file-writing receiver) on 127.0.0.1, checks that every object
arrived, and deletes what was received. Printed at the end: seconds, objects/s and
MB/s for each, the peak RSS of ``pacsbridge send``, and the ratios with their
targets (see bench/README.md).

Usage::

    .venv/bin/python bench/run.py [--count N] [--corpus DIR] [--skip-dcmtk]
                                  [--repeat N] [--work-dir DIR] [--no-gnu-time]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pydicom.uid import JPEGBaseline8Bit

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
    """What every measurement shares: the photos and where to put what it receives."""

    photos: list[Path]
    work: Path
    use_gnu_time: bool
    repeat: int = 1


# --- pacsbridge -----------------------------------------------------------------


def _write_config(path: Path, port: int, max_pdu: int) -> Path:
    """The TOML that points pacsbridge at the storescp of this measurement."""
    path.write_text(
        "[local]\n"
        'ae_title = "PACSBRIDGE"\n'
        f"max_pdu = {max_pdu}\n"
        "\n[[destinations]]\n"
        'name = "bench"\n'
        'kind = "dicom"\n'
        f'ae_title = "{peers.STORESCP_AE}"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
    )
    return path


def measure_pacsbridge(
    setup: Setup, photos: Sequence[Path], pdu: int, label: str
) -> Figure:
    """Time ``pacsbridge send`` of ``photos`` to a storescp whose max PDU is ``pdu``.

    Both ends use the same maximum: storescp's ``-pdu`` (DCMTK's default when it is
    16 KiB) and our ``local.max_pdu``.
    """
    with _scratch(setup, "pacsbridge") as scratch:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(scratch / "received", scp_pdu) as scp:
            config = _write_config(scratch / "bench.toml", scp.port, pdu)
            send = ["send", *map(str, photos), *PATIENT]
            run = _pacsbridge(setup, ["--config", str(config), *send], scratch)
        if run.returncode != 0:
            raise BenchFailure(
                f"pacsbridge send exited with {run.returncode} after "
                f"{run.seconds:.1f} s; storescp stored {len(scp.received())} of "
                f"{len(photos)}. It said: {(run.stderr or run.stdout).strip()[-600:]}"
            )
        stored = scp.check_received(len(photos))
        _check_jpeg_baseline(scp.received())
    nbytes = _size(photos)
    note = f"stored {stored / nbytes:.3f} x input bytes, JPEG Baseline"
    return Figure(label, run.seconds, len(photos), nbytes, run.peak_rss_kib,
                  run.cpu_seconds, note)  # fmt: skip


def _pacsbridge(setup: Setup, args: list[str], cwd: Path) -> timing.Measured:
    """Run the installed ``pacsbridge`` command with ``args``, measured."""
    return timing.run_measured(
        [str(PACSBRIDGE), *args],
        cwd=cwd,
        env=timing.clean_env(),
        use_gnu_time=setup.use_gnu_time,
    )


def _check_jpeg_baseline(files: Sequence[Path]) -> None:
    """Stop unless every received object is JPEG Baseline, as the photo was."""
    for path in files:
        syntax = read_file_meta_info(path).get("TransferSyntaxUID")
        if syntax != JPEGBaseline8Bit:
            raise BenchFailure(f"{path.name} arrived as {syntax}, not JPEG Baseline")


def measure_startup(setup: Setup) -> Figure:
    """The best of three ``pacsbridge version``: start-up paid once per send."""
    runs = [_pacsbridge(setup, ["version"], setup.work) for _ in range(3)]
    best = min(runs, key=lambda r: r.seconds)
    if best.returncode != 0:
        raise BenchFailure(f"pacsbridge version exited with {best.returncode}")
    note = "best of 3, included in each send"
    label = "pacsbridge start-up (version)"
    return Figure(label, best.seconds, 0, 0, best.peak_rss_kib, best.cpu_seconds, note)


# --- DCMTK and the loopback floor ---------------------------------------------


def measure_dcmtk(setup: Setup) -> list[Figure]:
    """img2dcm of every photo, then one storescu at each max PDU, and the sums."""
    photos, nbytes = setup.photos, _size(setup.photos)

    def figure(label: str, seconds: float, note: str) -> Figure:
        return Figure(label, seconds, len(photos), nbytes, note=note)

    with _scratch(setup, "img2dcm") as scratch:
        started = time.perf_counter()
        files = peers.img2dcm_all(photos, scratch / "dicom")
        convert = time.perf_counter() - started
        figures = [figure("img2dcm, one per photo", convert, "sequential, one loop")]
        for pdu in (peers.STOCK_PDU, peers.LARGE_PDU):
            send = _time_storescu(setup, files, pdu)
            kib = pdu // 1024
            figures += [
                figure(f"storescu, {kib} KiB PDU", send, "-xy -R: JPEG Baseline as is"),
                figure(
                    f"DCMTK pair, {kib} KiB PDU", convert + send, "img2dcm + storescu"
                ),
            ]
    return figures


def _time_storescu(setup: Setup, files: Sequence[Path], pdu: int) -> float:
    with _scratch(setup, "storescu") as scratch:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(scratch / "received", scp_pdu) as scp:
            started = time.perf_counter()
            peers.storescu_all(files, scp.port, scp_pdu)
            seconds = time.perf_counter() - started
        scp.check_received(len(files))
        _check_jpeg_baseline(scp.received())
    return seconds


def measure_loopback(setup: Setup) -> Figure:
    """The floor: the same bytes over loopback TCP into files, no DICOM at all."""
    with _scratch(setup, "loopback") as scratch:
        seconds = loopback.copy_over_loopback(setup.photos, scratch / "copies")
    note = "1 connection, 1 file per photo"
    return Figure(
        report.COPY, seconds, len(setup.photos), _size(setup.photos), note=note
    )


# --- plumbing -------------------------------------------------------------------


@contextlib.contextmanager
def _scratch(setup: Setup, name: str) -> Iterator[Path]:
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


def _size(photos: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in photos)


def _attempt(
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


def _load_photos(corpus: Path, count: int | None) -> list[Path]:
    photos = sorted(corpus.resolve().glob("*.jpg"))  # pacsbridge runs elsewhere
    if not photos:
        raise SystemExit(f"no photos in {corpus}: run bench/make_corpus.py first")
    if count is not None and count > len(photos):
        raise SystemExit(f"--count {count}: {corpus} holds only {len(photos)} photos")
    return photos[:count] if count else photos


def _warm_cache(photos: Sequence[Path]) -> None:
    """Read every photo once so that every measurement starts from the page cache."""
    for photo in photos:
        photo.read_bytes()


# --- the run --------------------------------------------------------------------


def measure_all(setup: Setup, skip_dcmtk: bool) -> list[Figure]:
    """Every measurement; each cleans up after itself, so the order is free."""
    photos = setup.photos
    quarter = photos[: max(1, len(photos) // 4)]
    sends = [
        (report.PB_16K, photos, peers.STOCK_PDU),
        (report.PB_128K, photos, peers.LARGE_PDU),
        (report.PB_QUARTER, quarter, peers.STOCK_PDU),
    ]

    figures = _attempt(setup, "start-up", partial(measure_startup, setup))
    figures += _attempt(setup, report.COPY, partial(measure_loopback, setup))
    for label, chosen, pdu in sends:
        send = partial(measure_pacsbridge, setup, chosen, pdu, label)
        figures += _attempt(setup, label, send)
    if not skip_dcmtk:
        figures += _attempt(setup, "DCMTK pair", partial(measure_dcmtk, setup))
    return figures


def _print_setup(setup: Setup, corpus: Path) -> None:
    mb = _size(setup.photos) / 1e6
    rss = "GNU time -v" if setup.use_gnu_time else "getrusage(RUSAGE_CHILDREN)"
    print(f"corpus      {len(setup.photos)} photos, {mb:.0f} MB, from {corpus}")
    print(f"received in {setup.work}, on {_filesystem(setup.work)}")
    print("            (storescp, img2dcm and the loopback copy all write there)")
    print(
        f"machine     {os.cpu_count()} cores; DCMTK {peers.dcmtk_version()}, "
        f"stock storescp, no TCP_NODELAY; peak RSS by {rss}"
    )
    print(f"pacsbridge  {_source_state()}")
    print(f"load        {_load()} (1-minute average) at the start")
    rounds = "1 round" if setup.repeat == 1 else f"best of {setup.repeat} rounds"
    print(f"timing      {rounds}; peak RSS the largest of all rounds")


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


def _load() -> str:
    """The load average: other work on the machine makes every figure noisier."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    parser.add_argument("--count", type=int, help="use the first N photos only")
    parser.add_argument(
        "--skip-dcmtk", action="store_true", help="leave out img2dcm + storescu"
    )
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
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    photos = _load_photos(args.corpus, args.count)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work_dir.resolve()))
    gnu_time = not args.no_gnu_time and timing.gnu_time_works()
    setup = Setup(photos, work, gnu_time, args.repeat)
    try:
        _warm_cache(photos)
        _print_setup(setup, args.corpus)
        figures = measure_all(setup, args.skip_dcmtk)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report.print_table(figures, report.ratios(figures))
    print(f"\nload average at the end: {_load()}")
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
