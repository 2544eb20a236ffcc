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
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pydicom.uid import JPEGBaseline8Bit

import loopback
import peers
import report
import timing
from harness import (
    BENCH,
    PATIENT,
    BenchFailure,
    Setup,
    add_common_options,
    attempt,
    load_average,
    measure_startup,
    print_environment,
    run_pacsbridge,
    scratch,
    total_size,
    write_config,
)
from report import Figure

# --- pacsbridge -----------------------------------------------------------------


def measure_pacsbridge(
    setup: Setup, photos: Sequence[Path], pdu: int, label: str
) -> Figure:
    """Time ``pacsbridge send`` of ``photos`` to a storescp whose max PDU is ``pdu``.

    Both ends use the same maximum: storescp's ``-pdu`` (DCMTK's default when it is
    16 KiB) and our ``local.max_pdu``.
    """
    with scratch(setup, "pacsbridge") as folder:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(folder / "received", scp_pdu) as scp:
            config = write_config(folder / "bench.toml", scp.port, pdu)
            send = ["send", *map(str, photos), *PATIENT]
            run = run_pacsbridge(setup, ["--config", str(config), *send], folder)
        if run.returncode != 0:
            raise BenchFailure(
                f"pacsbridge send exited with {run.returncode} after "
                f"{run.seconds:.1f} s; storescp stored {len(scp.received())} of "
                f"{len(photos)}. It said: {(run.stderr or run.stdout).strip()[-600:]}"
            )
        stored = scp.check_received(len(photos))
        _check_jpeg_baseline(scp.received())
    nbytes = total_size(photos)
    note = f"stored {stored / nbytes:.3f} x input bytes, JPEG Baseline"
    return Figure(label, run.seconds, len(photos), nbytes, run.peak_rss_kib,
                  run.cpu_seconds, note)  # fmt: skip


def _check_jpeg_baseline(files: Sequence[Path]) -> None:
    """Stop unless every received object is JPEG Baseline, as the photo was."""
    for path in files:
        syntax = read_file_meta_info(path).get("TransferSyntaxUID")
        if syntax != JPEGBaseline8Bit:
            raise BenchFailure(f"{path.name} arrived as {syntax}, not JPEG Baseline")


# --- DCMTK and the loopback floor ---------------------------------------------


def measure_dcmtk(setup: Setup) -> list[Figure]:
    """img2dcm of every photo, then one storescu at each max PDU, and the sums."""
    photos, nbytes = setup.inputs, total_size(setup.inputs)

    def figure(label: str, seconds: float, note: str) -> Figure:
        return Figure(label, seconds, len(photos), nbytes, note=note)

    with scratch(setup, "img2dcm") as folder:
        started = time.perf_counter()
        files = peers.img2dcm_all(photos, folder / "dicom")
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
    with scratch(setup, "storescu") as folder:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(folder / "received", scp_pdu) as scp:
            started = time.perf_counter()
            peers.storescu_all(files, scp.port, scp_pdu)
            seconds = time.perf_counter() - started
        scp.check_received(len(files))
        _check_jpeg_baseline(scp.received())
    return seconds


def measure_loopback(setup: Setup) -> Figure:
    """The floor: the same bytes over loopback TCP into files, no DICOM at all."""
    with scratch(setup, "loopback") as folder:
        seconds = loopback.copy_over_loopback(setup.inputs, folder / "copies")
    note = "1 connection, 1 file per photo"
    return Figure(
        report.COPY, seconds, len(setup.inputs), total_size(setup.inputs), note=note
    )


# --- plumbing -------------------------------------------------------------------


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
    photos = setup.inputs
    quarter = photos[: max(1, len(photos) // 4)]
    sends = [
        (report.PB_16K, photos, peers.STOCK_PDU),
        (report.PB_128K, photos, peers.LARGE_PDU),
        (report.PB_QUARTER, quarter, peers.STOCK_PDU),
    ]

    figures = attempt(setup, "start-up", partial(measure_startup, setup))
    figures += attempt(setup, report.COPY, partial(measure_loopback, setup))
    for label, chosen, pdu in sends:
        send = partial(measure_pacsbridge, setup, chosen, pdu, label)
        figures += attempt(setup, label, send)
    if not skip_dcmtk:
        figures += attempt(setup, "DCMTK pair", partial(measure_dcmtk, setup))
    return figures


def _print_setup(setup: Setup, corpus: Path) -> None:
    mb = total_size(setup.inputs) / 1e6
    print(f"corpus      {len(setup.inputs)} photos, {mb:.0f} MB, from {corpus}")
    print_environment(setup, "storescp, img2dcm and the loopback copy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    parser.add_argument("--count", type=int, help="use the first N photos only")
    parser.add_argument(
        "--skip-dcmtk", action="store_true", help="leave out img2dcm + storescu"
    )
    add_common_options(parser)
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
    print(f"\nload average at the end: {load_average()}")
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
