"""The video benchmark: ``pacsbridge send`` of conforming videos, its speed and memory.

Each measurement stores the videos of ``bench/videos`` (made by make_videos.py)
into a fresh stock ``storescp +xa`` on 127.0.0.1, or, for the floor, copies their
bytes into files over loopback TCP. It checks that every object arrived in MPEG-4
AVC/H.264 High Profile / Level 4.1 with the video's bytes as its Pixel Data, and
deletes what was received. Printed at the end: seconds, objects/s and MB/s of
each, CPU and peak RSS where measured, and the ratios with their targets (see
the Videos section of bench/README.md).

Usage::

    .venv/bin/python bench/video.py [--videos DIR] [--skip-dcmtk]
                                    [--skip-pynetdicom] [--skip-big]
                                    [--split-bytes N] [--repeat N]
                                    [--work-dir DIR] [--no-gnu-time]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import loopback
import peers
import report
import timing
import video_objects
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
from report import Comparison, Figure

TARGET_VS_COPY = 1.5  # pacsbridge send / loopback copy, at most
TARGET_PEAK_MIB = 200  # peak RSS of pacsbridge with the big file, at most
SPLIT_BYTES = 700_000_000  # video.max_object_size that cuts the big file in 3

DICOMIZE = "pacsbridge dicomize, the set"
SCU_16K = "storescu -xn, 16 KiB PDU"
SCU_128K = "storescu -xn, 128 KiB PDU"
PYNETDICOM = "pynetdicom + pydicom, 16 KiB PDU"
BIG_SEND = "pacsbridge send, big file"
BIG_DICOMIZE = "pacsbridge dicomize, big file"
BIG_PARTS = "pacsbridge send, big file in parts"
SENDING_16K = "  of it sending, 16 KiB PDU"  # see sending_label()
SENDING_128K = "  of it sending, 128 KiB PDU"

COMPARISONS = (
    Comparison("pacsbridge 16 KiB / loopback copy", report.PB_16K, report.COPY,
               target=TARGET_VS_COPY),
    Comparison("pacsbridge 128 KiB / loopback copy", report.PB_128K, report.COPY,
               target=TARGET_VS_COPY),
    Comparison("sending only, 16 KiB / loopback copy",
               SENDING_16K, report.COPY),
    Comparison("sending only, 128 KiB / loopback copy",
               SENDING_128K, report.COPY),
    Comparison("storescu 16 KiB / loopback copy", SCU_16K, report.COPY),
    Comparison("storescu 128 KiB / loopback copy", SCU_128K, report.COPY),
    Comparison("pynetdicom 16 KiB / loopback copy", PYNETDICOM, report.COPY),
    Comparison("peak RSS, big file / the set", BIG_SEND, report.PB_16K,
               of_memory=True, target=report.TARGET_RSS_GROWTH),
    Comparison("peak RSS MiB, send big file", BIG_SEND, None, of_memory=True,
               target=TARGET_PEAK_MIB),
    Comparison("peak RSS MiB, dicomize big file", BIG_DICOMIZE, None,
               of_memory=True, target=TARGET_PEAK_MIB),
    Comparison("peak RSS MiB, send big file in parts", BIG_PARTS, None,
               of_memory=True, target=TARGET_PEAK_MIB),
)  # fmt: skip

# "bench: 10 stored, 0 with warnings, 0 failed, 0 not sent (1.2 s)"
_SENT = re.compile(r"^bench: (\d+) stored, .*\(([\d.]+) s\)$", re.MULTILINE)


@dataclass(frozen=True)
class Videos:
    """The inputs as make_videos.py recorded them: the set, the big file, frames."""

    set: list[Path]
    big: Path | None
    frames: dict[Path, int]


# --- pacsbridge -----------------------------------------------------------------


def measure_send(
    setup: Setup, videos: Videos, files: list[Path], pdu: int, label: str
) -> list[Figure]:
    """Time ``pacsbridge send`` of ``files``, each one object, sent as it is;
    then the part of it spent on the association."""
    with scratch(setup, "pacsbridge") as folder:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(folder / "received", scp_pdu) as scp:
            config = write_config(folder / "bench.toml", scp.port, pdu)
            run = _send(setup, config, files, folder)
        _expect_path(run, files, "as-is")
        scp.check_received(len(files))
        video_objects.check_as_sent(scp.received(), files, videos.frames)
    return [_figure(label, run, files, _send_note(run)), _sending(label, run, files)]


def measure_parts(
    setup: Setup, videos: Videos, split_bytes: int, label: str
) -> list[Figure]:
    """Time ``pacsbridge send`` of the big file cut into objects of ``split_bytes``."""
    assert videos.big is not None
    big = videos.big
    # The parts are written under local.data_dir, by default next to the config.
    video = f"\n[video]\nmax_object_size = {split_bytes}\n"
    with scratch(setup, "parts") as folder:
        with peers.StoreSCP(folder / "received") as scp:
            config = folder / "bench.toml"
            write_config(config, scp.port, peers.STOCK_PDU, video)
            run = _send(setup, config, [big], folder)
        _expect_path(run, [big], "remuxed")
        stored = _job_report(run)[0]
        scp.check_received(stored)
        video_objects.check_parts(scp.received(), big, videos.frames[big], split_bytes)
    note = f"{stored} parts of <= {split_bytes / 1e6:.0f} MB; " + _send_note(run)
    return [_figure(label, run, [big], note), _sending(label, run, [big])]


def measure_dicomize(
    setup: Setup, videos: Videos, files: list[Path], label: str
) -> Figure:
    """Time ``pacsbridge dicomize`` of ``files`` into a folder, then delete it."""
    with scratch(setup, "dicomize") as folder:
        run = _dicomize(setup, files, folder / "objects", folder)
        video_objects.check_as_sent(_files(folder / "objects"), files, videos.frames)
    return _figure(label, run, files, "Part 10 files written, then checked")


def _dicomize(
    setup: Setup, files: Sequence[Path], out: Path, cwd: Path
) -> timing.Measured:
    args = ["dicomize", *map(str, files), "--out", str(out), *PATIENT]
    run = run_pacsbridge(setup, args, cwd)
    if run.returncode != 0:
        raise BenchFailure(
            f"pacsbridge dicomize exited with {run.returncode}. It said: "
            f"{(run.stderr or run.stdout).strip()[-600:]}"
        )
    _expect_path(run, files, "as-is")
    return run


def _send(
    setup: Setup, config: Path, files: Sequence[Path], cwd: Path
) -> timing.Measured:
    send = ["--config", str(config), "send", *map(str, files), *PATIENT]
    run = run_pacsbridge(setup, send, cwd)
    if run.returncode != 0:
        raise BenchFailure(
            f"pacsbridge send exited with {run.returncode} after {run.seconds:.1f} s. "
            f"It said: {(run.stderr or run.stdout).strip()[-600:]}"
        )
    return run


def _expect_path(run: timing.Measured, files: Sequence[Path], taken: str) -> None:
    """Stop unless pacsbridge said it took path ``taken`` for every file."""
    for path in files:
        if f"{path}: {taken}, sent as" not in run.stderr:
            raise BenchFailure(
                f"pacsbridge did not say '{taken}' for {path.name}: "
                f"{run.stderr.strip()[-400:]}"
            )


def _job_report(run: timing.Measured) -> tuple[int, float]:
    """What pacsbridge send reports: objects stored, seconds of the association."""
    match = _SENT.search(run.stdout)
    if match is None:
        raise BenchFailure(f"pacsbridge send printed no report: {run.stdout[-300:]}")
    return int(match.group(1)), float(match.group(2))


def _send_note(run: timing.Measured) -> str:
    """The time before the association: start-up, probing and planning."""
    before = run.seconds - _job_report(run)[1]
    return f"{before:.2f} s before the association: start-up, probe, plan"


def _sending(label: str, run: timing.Measured, files: Sequence[Path]) -> Figure:
    """The association alone, from pacsbridge's own report: what the wire costs."""
    note = "association to release, as pacsbridge reports it"
    return Figure(sending_label(label), _job_report(run)[1], len(files),
                  total_size(files), note=note)  # fmt: skip


def sending_label(label: str) -> str:
    """The label of the association-only figure of the send figure ``label``."""
    return "  of it sending" + label.removeprefix("pacsbridge send")


# --- DCMTK, pynetdicom and the loopback floor -----------------------------------


def measure_others(
    setup: Setup, videos: Videos, dcmtk: bool, pynetdicom: bool
) -> list[Figure]:
    """pacsbridge dicomize of the set, then storescu and pynetdicom send its files."""
    files = videos.set
    figures = []
    with scratch(setup, "objects") as folder:
        built = _dicomize(setup, files, folder / "objects", folder)
        dicom = _files(folder / "objects")
        video_objects.check_as_sent(dicom, files, videos.frames)
        note = "the objects storescu and pynetdicom send"
        figures.append(_figure(DICOMIZE, built, files, note))
        if dcmtk:
            for pdu, label in ((peers.STOCK_PDU, SCU_16K), (peers.LARGE_PDU, SCU_128K)):
                figures.append(_measure_storescu(setup, videos, dicom, pdu, label))
        if pynetdicom:
            figures.append(_measure_pynetdicom(setup, videos, dicom))
    return figures


def _measure_storescu(
    setup: Setup, videos: Videos, dicom: list[Path], pdu: int, label: str
) -> Figure:
    with scratch(setup, "storescu") as folder:
        scp_pdu = None if pdu == peers.STOCK_PDU else pdu
        with peers.StoreSCP(folder / "received", scp_pdu) as scp:
            argv = peers.storescu_argv(dicom, scp.port, scp_pdu, "-xn")
            run = _run(setup, argv, folder, "storescu")
        scp.check_received(len(dicom))
        video_objects.check_as_sent(scp.received(), videos.set, videos.frames)
    return _figure(label, run, videos.set, "-xn -R: H.264 as is, pre-built objects")


def _measure_pynetdicom(setup: Setup, videos: Videos, dicom: list[Path]) -> Figure:
    pdu = peers.STOCK_PDU
    with scratch(setup, "pynetdicom") as folder:
        with peers.StoreSCP(folder / "received") as scp:
            script = BENCH / "pynetdicom_send.py"
            argv = [
                sys.executable,
                str(script),
                str(scp.port),
                str(pdu),
                *map(str, dicom),
            ]
            run = _run(setup, argv, folder, "pynetdicom")
        scp.check_received(len(dicom))
        video_objects.check_as_sent(scp.received(), videos.set, videos.frames)
    largest = max(p.stat().st_size for p in videos.set)
    peak = (run.peak_rss_kib or 0) * 1024
    note = f"peak RSS {peak / largest:.1f} x the largest video; dcmread, send_c_store"
    return _figure(PYNETDICOM, run, videos.set, note)


def _run(setup: Setup, argv: list[str], cwd: Path, what: str) -> timing.Measured:
    run = timing.run_measured(
        argv, cwd=cwd, env=timing.clean_env(), use_gnu_time=setup.use_gnu_time
    )
    if run.returncode != 0:
        raise BenchFailure(
            f"{what} exited with {run.returncode}: {run.stderr.strip()[-500:]}"
        )
    return run


def measure_loopback(setup: Setup) -> Figure:
    """The floor: the same bytes over loopback TCP into files, no DICOM at all."""
    with scratch(setup, "loopback") as folder:
        seconds = loopback.copy_over_loopback(setup.inputs, folder / "copies")
    note = "1 connection, 1 file per video"
    return Figure(
        report.COPY, seconds, len(setup.inputs), total_size(setup.inputs), note=note
    )


# --- plumbing -------------------------------------------------------------------


def _figure(
    label: str, run: timing.Measured, files: Sequence[Path], note: str
) -> Figure:
    return Figure(label, run.seconds, len(files), total_size(files),
                  run.peak_rss_kib, run.cpu_seconds, note)  # fmt: skip


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def load_videos(folder: Path, with_big: bool) -> Videos:
    """The set and the big file as make_videos.py's manifest names them."""
    folder = folder.resolve()  # pacsbridge runs elsewhere
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        raise SystemExit(
            f"no videos in {folder}: run bench/make_videos.py first"
        ) from None
    frames = {folder / n: int(v["frames"]) for n, v in manifest["videos"].items()}
    videos = [folder / name for name in manifest["set"]]
    big = folder / manifest["big"] if with_big and manifest["big"] else None
    for path in [*videos, *([big] if big else [])]:
        made = manifest["videos"][path.name]["size"]
        if not path.is_file() or path.stat().st_size != made:
            raise SystemExit(f"{path} is missing or changed: run make_videos.py")
    return Videos(videos, big, frames)


def _warm_cache(paths: Sequence[Path]) -> None:
    """Read every video once so that every measurement starts from the page cache."""
    for path in paths:
        with path.open("rb") as file:
            while file.read(1 << 23):
                pass


# --- the run --------------------------------------------------------------------


@dataclass(frozen=True)
class _Choices:
    dcmtk: bool
    pynetdicom: bool
    split_bytes: int


def measure_all(setup: Setup, videos: Videos, choices: _Choices) -> list[Figure]:
    """Every measurement; each cleans up after itself, so the order is free."""
    the_set = videos.set
    figures = attempt(setup, "start-up", partial(measure_startup, setup))
    figures += attempt(setup, report.COPY, partial(measure_loopback, setup))
    for label, pdu in (
        (report.PB_16K, peers.STOCK_PDU),
        (report.PB_128K, peers.LARGE_PDU),
    ):
        send = partial(measure_send, setup, videos, the_set, pdu, label)
        figures += attempt(setup, label, send)
    if choices.dcmtk or choices.pynetdicom:
        others = partial(
            measure_others, setup, videos, choices.dcmtk, choices.pynetdicom
        )
        figures += attempt(setup, "storescu and pynetdicom", others)
    if videos.big is not None:
        big = [videos.big]
        send = partial(measure_send, setup, videos, big, peers.STOCK_PDU, BIG_SEND)
        figures += attempt(setup, BIG_SEND, send)
        dicomize = partial(measure_dicomize, setup, videos, big, BIG_DICOMIZE)
        figures += attempt(setup, BIG_DICOMIZE, dicomize)
        if choices.split_bytes:
            parts = partial(
                measure_parts, setup, videos, choices.split_bytes, BIG_PARTS
            )
            figures += attempt(setup, BIG_PARTS, parts)
    return figures


def _print_setup(setup: Setup, videos: Videos, folder: Path) -> None:
    sizes = [p.stat().st_size for p in videos.set]
    print(
        f"videos      set of {len(sizes)}, {sum(sizes) / 1e6:.0f} MB, "
        f"{min(sizes) / 1e6:.0f} to {max(sizes) / 1e6:.0f} MB each, from {folder}"
    )
    if videos.big is not None:
        size = videos.big.stat().st_size
        print(f"            big file {size / 1e6:.0f} MB ({size} bytes), one object")
    print("            H.264 High Profile, Level 4.1, 1920x1080 at 30 frames/s")
    print_environment(setup, "storescp, pacsbridge dicomize and the loopback copy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=BENCH / "videos")
    parser.add_argument("--skip-dcmtk", action="store_true", help="leave out storescu")
    parser.add_argument(
        "--skip-pynetdicom", action="store_true", help="leave out pynetdicom"
    )
    parser.add_argument(
        "--skip-big", action="store_true", help="leave out the big file"
    )
    parser.add_argument(
        "--split-bytes",
        type=int,
        default=SPLIT_BYTES,
        help="video.max_object_size for the big file in parts (0: leave it out)",
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.split_bytes and args.split_bytes < 1024 * 1024:
        parser.error("--split-bytes must be 0 or at least 1 MiB")

    videos = load_videos(args.videos, not args.skip_big)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="video-", dir=args.work_dir.resolve()))
    gnu_time = not args.no_gnu_time and timing.gnu_time_works()
    setup = Setup(videos.set, work, gnu_time, args.repeat)
    choices = _Choices(not args.skip_dcmtk, not args.skip_pynetdicom, args.split_bytes)
    try:
        _warm_cache([*videos.set, *([videos.big] if videos.big else [])])
        _print_setup(setup, videos, args.videos)
        figures = measure_all(setup, videos, choices)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report.print_table(figures, report.ratios(figures, COMPARISONS))
    print(f"\nload average at the end: {load_average()}")
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
