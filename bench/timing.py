"""Run one command and measure it: wall and CPU time, and its peak resident memory.

GNU time (``/usr/bin/time -v``) reports the peak RSS of the command it runs. Where it
is missing, a small Python wrapper process runs the command and reads
``getrusage(RUSAGE_CHILDREN)`` after it: the wrapper's only children are the command
and what the command starts, so their largest peak is the command's. Either way the
wall time is taken as close to the command as possible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"

# Run by the fallback wrapper: argv[1] is where to write the figures, the rest the
# command. ru_maxrss is in KiB on Linux.
_WRAPPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[2:]).returncode
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
figures = {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
           "peak_rss_kib": usage.ru_maxrss, "code": code}
with open(sys.argv[1], "w") as out:
    json.dump(figures, out)
"""
_GNU_PEAK = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_GNU_CPU = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")


@dataclass(frozen=True)
class Measured:
    """What one command did: wall and CPU time, peak RSS, and what it printed."""

    seconds: float
    cpu_seconds: float | None
    peak_rss_kib: int | None
    returncode: int
    stdout: str
    stderr: str


def gnu_time_works() -> bool:
    """Whether ``/usr/bin/time -v`` is here and reports a peak RSS."""
    if not Path(GNU_TIME).is_file() or shutil.which("true") is None:
        return False
    done = subprocess.run(
        [GNU_TIME, "-v", "true"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and _GNU_PEAK.search(done.stderr) is not None


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    use_gnu_time: bool,
) -> Measured:
    """Run ``argv`` to its end; its wall time, peak RSS, exit code and output."""
    with tempfile.TemporaryDirectory(prefix="bench-timing-") as tmp:
        report = Path(tmp) / "report"
        if use_gnu_time:
            return _with_gnu_time(argv, cwd, env, report)
        return _with_wrapper(argv, cwd, env, report)


def _with_gnu_time(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], report: Path
) -> Measured:
    command = [GNU_TIME, "-v", "-o", str(report), *argv]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started

    text = report.read_text() if report.exists() else ""
    match = _GNU_PEAK.search(text)
    peak = int(match.group(1)) if match else None
    cpu = sum(float(v) for v in _GNU_CPU.findall(text)) if match else None
    return Measured(seconds, cpu, peak, done.returncode, done.stdout, done.stderr)


def _with_wrapper(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], report: Path
) -> Measured:
    command = [sys.executable, "-c", _WRAPPER, str(report), *argv]
    done = subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if not report.exists():
        failed = done.returncode or 1
        return Measured(0.0, None, None, failed, done.stdout, done.stderr)
    figures = json.loads(report.read_text())
    return Measured(
        float(figures["seconds"]),
        float(figures["cpu_seconds"]),
        int(figures["peak_rss_kib"]),
        int(figures["code"]),
        done.stdout,
        done.stderr,
    )


def clean_env(drop: Sequence[str] = ("TCP_NODELAY",)) -> dict[str, str]:
    """This process's environment without ``drop``: stock behaviour for the peers."""
    return {k: v for k, v in os.environ.items() if k not in drop}
