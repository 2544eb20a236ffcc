"""DCMTK's findscu as the reference C-FIND client the lookup tests compare against.

findscu builds the identifier from ``-k`` keys, sends one C-FIND, and with
``-X`` writes each pending response's identifier to ``rsp0001.dcm``,
``rsp0002.dcm``... in the order they arrived. Keys are findscu's own syntax:
``PatientName=Müller*``, ``AccessionNumber=`` (a return key), and for a
sequence ``(0040,0100)[0].Modality=XC`` or
``ScheduledProcedureStepSequence[0].Modality=XC``. findscu puts a key's bytes
into the query unchanged: a ``str`` key arrives as UTF-8, so a query with
non-ASCII values should carry ``SpecificCharacterSet=ISO_IR 192``; a ``bytes``
key can carry Latin-1 or ISO 2022 values instead.

findscu exits with 0 even when the SCP ends the query with a failure status,
so the final status is read from its log.

Errors::

    FindSCUError   findscu failed, or the SCP ended the query without Success
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.peers import HOST, find_tool

_MODEL_OPTIONS = {"worklist": "-W", "study": "-S", "patient": "-P"}
_FINAL_STATUS = re.compile(r"Received Final Find Response \(([^)]*)\)")
_TIMEOUT = 60
_LOG_TAIL_LINES = 15


class FindSCUError(RuntimeError):
    """findscu failed, or the SCP ended the query without Success."""


def _log_tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])


def findscu(
    port: int,
    called_ae: str,
    model: Literal["worklist", "study", "patient"],
    keys: Sequence[str | bytes],
    *,
    calling_ae: str = "FINDSCU",
    workdir: Path,
) -> list[Dataset]:
    """Query the SCP on 127.0.0.1:``port``; return its answers in order.

    ``model`` picks Modality Worklist (``-W``), Study Root (``-S``) or Patient
    Root (``-P``) Query/Retrieve - FIND. The responses are extracted to
    ``workdir`` (earlier ``rsp*.dcm`` there are removed first) and kept for
    anyone debugging a test. Raise FindSCUError when findscu exits with an
    error or the final response is not Success.
    """
    tool = find_tool("findscu")
    if tool is None:
        raise FindSCUError("findscu is not installed (Debian package dcmtk).")
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("rsp*.dcm"):
        old.unlink()

    # -v logs the final status; -sr keeps the answers themselves out of it.
    command: list[str | bytes] = [str(tool), "-v", "-sr", "-X", _MODEL_OPTIONS[model]]
    command += ["-aet", calling_ae, "-aec", called_ae, "-od", str(workdir)]
    for key in keys:
        command += ["-k", key]
    command += [HOST, str(port)]
    result = subprocess.run(
        command, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT
    )

    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise FindSCUError(
            f"findscu to {called_ae} on port {port} exited with code "
            f"{result.returncode}:\n{_log_tail(log)}"
        )
    status = _FINAL_STATUS.search(log)
    if status is None or status.group(1) != "Success":
        said = status.group(1) if status else "no final response"
        raise FindSCUError(
            f"{called_ae} on port {port} ended the C-FIND with {said}:\n"
            f"{_log_tail(log)}"
        )
    answers = sorted(workdir.glob("rsp*.dcm"), key=lambda path: int(path.stem[3:]))
    return [dcmread(path) for path in answers]
