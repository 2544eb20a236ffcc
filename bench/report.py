"""The benchmark's figures, the ratios between them, and the table that shows them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

TARGET_VS_DCMTK = 5.0  # DCMTK pair time / pacsbridge time, at least
TARGET_16K_VS_COPY = 2.5  # pacsbridge (16 KiB PDU) time / loopback copy, at most
TARGET_128K_VS_COPY = 1.5  # pacsbridge (128 KiB PDU) time / loopback copy, at most
TARGET_RSS_GROWTH = 1.25  # peak RSS, all photos / a quarter of them, at most

# The labels the ratios look figures up by.
PB_16K = "pacsbridge send, 16 KiB PDU"
PB_128K = "pacsbridge send, 128 KiB PDU"
PB_QUARTER = "pacsbridge send, 16 KiB PDU, quarter"
PAIR_16K = "DCMTK pair, 16 KiB PDU"
PAIR_128K = "DCMTK pair, 128 KiB PDU"
COPY = "loopback copy"


@dataclass(frozen=True)
class Figure:
    """One measurement: ``seconds`` is None when it failed (``error`` says why)."""

    label: str
    seconds: float | None
    objects: int
    nbytes: int
    peak_rss_kib: int | None = None
    cpu_seconds: float | None = None
    note: str = ""
    error: str = ""


@dataclass(frozen=True)
class Ratio:
    """A quotient of two figures and the target it is held to, if any."""

    label: str
    value: float | None
    target: str = ""
    passed: bool | None = None


@dataclass(frozen=True)
class Comparison:
    """How two figures are compared: their labels, and the target of the quotient.

    Without a ``denominator`` the numerator's own figure is held to the target:
    seconds, or with ``of_memory`` its peak RSS in MiB.
    """

    label: str
    numerator: str
    denominator: str | None
    of_memory: bool = False  # peak RSS instead of seconds
    target: float | None = None
    at_least: bool = False


PHOTO_COMPARISONS = (
    Comparison("DCMTK pair / pacsbridge, 16 KiB PDU", PAIR_16K, PB_16K,
               target=TARGET_VS_DCMTK, at_least=True),
    Comparison("DCMTK pair / pacsbridge, 128 KiB PDU", PAIR_128K, PB_128K),
    Comparison("pacsbridge 16 KiB / loopback copy", PB_16K, COPY,
               target=TARGET_16K_VS_COPY),
    Comparison("pacsbridge 128 KiB / loopback copy", PB_128K, COPY,
               target=TARGET_128K_VS_COPY),
    Comparison("peak RSS, all photos / a quarter", PB_16K, PB_QUARTER,
               of_memory=True, target=TARGET_RSS_GROWTH),
)  # fmt: skip


def ratios(
    figures: Sequence[Figure], comparisons: Sequence[Comparison] = PHOTO_COMPARISONS
) -> list[Ratio]:
    """The comparisons the benchmark is for, with their targets, where measured."""
    by_label = {f.label: f for f in figures}
    found = []
    for c in comparisons:
        if c.numerator not in by_label:
            continue  # not measured in this run (--skip-dcmtk)
        value = _value(by_label[c.numerator], c)
        if c.denominator is not None:
            if c.denominator not in by_label:
                continue
            value = _div(value, _value(by_label[c.denominator], c))
        found.append(_judge(c, value))
    return found


def _value(figure: Figure, c: Comparison) -> float | None:
    if not c.of_memory:
        return figure.seconds
    return None if figure.peak_rss_kib is None else figure.peak_rss_kib / 1024


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _judge(c: Comparison, value: float | None) -> Ratio:
    if c.target is None:
        return Ratio(c.label, value)
    target = f"{'>=' if c.at_least else '<='} {c.target:g}"
    if value is None:
        return Ratio(c.label, value, target)
    passed = value >= c.target if c.at_least else value <= c.target
    return Ratio(c.label, value, target, passed)


def best_of(rounds: Sequence[Sequence[Figure]]) -> list[Figure]:
    """Each figure's fastest round, with the largest peak RSS of all rounds.

    The fastest round is the one the rest of the machine disturbed least; memory
    is held to its worst.
    """
    best: list[Figure] = []
    for same in zip(*rounds, strict=True):
        fastest = min(same, key=lambda f: f.seconds or 0.0)
        peaks = [f.peak_rss_kib for f in same if f.peak_rss_kib is not None]
        note = fastest.note
        if len(same) > 1:
            slowest = max(f.seconds or 0.0 for f in same)
            note = f"{note}; slowest round {slowest:.2f} s"
        peak = max(peaks, default=None)
        best.append(replace(fastest, peak_rss_kib=peak, note=note))
    return best


def print_table(figures: Sequence[Figure], found: Sequence[Ratio]) -> None:
    """The figures, then the ratios with PASS or MISS, then any failures."""
    print(
        f"\n{'measurement':<38}{'seconds':>9}{'objects/s':>11}{'MB/s':>9}"
        f"{'CPU s':>8}{'peak RSS':>11}  note"
    )
    for f in figures:
        print(_figure_row(f))

    print(f"\n{'ratio':<38}{'value':>9}{'target':>11}  result")
    for r in found:
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        result = {True: "PASS", False: "MISS", None: "-" if not r.target else "n/a"}
        print(f"{r.label:<38}{value:>9}{r.target:>11}  {result[r.passed]}")

    failed = [f for f in figures if f.error]
    for f in failed:
        print(f"\nFAILED {f.label}: {f.error}")


def _figure_row(f: Figure) -> str:
    if f.seconds is None:
        return f"{f.label:<38}{'FAILED':>9}"
    rate = f"{f.objects / f.seconds:.1f}" if f.objects else "-"
    mbps = f"{f.nbytes / 1e6 / f.seconds:.1f}" if f.nbytes else "-"
    cpu = "-" if f.cpu_seconds is None else f"{f.cpu_seconds:.2f}"
    rss = f"{f.peak_rss_kib / 1024:.0f} MiB" if f.peak_rss_kib else "-"
    return (
        f"{f.label:<38}{f.seconds:>9.2f}{rate:>11}{mbps:>9}{cpu:>8}{rss:>11}  {f.note}"
    )
