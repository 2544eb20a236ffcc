"""DCMTK's dump texts: writing one for dump2dcm, and reading DCMTK's sample worklist.

A dump has one element a line, ``(gggg,eeee) VR [value]``; an SQ element is
followed by its items, each between ``(fffe,e000) -`` and ``(fffe,e00d) -``,
and ends with ``(fffe,e0dd) -``. dump2dcm copies the bytes between the brackets
into the element unchanged, so a value is written here in the encoding of the
object's Specific Character Set, ISO 2022 escape sequences included.

Errors::

    DumpError   a value cannot be written in a dump, or dump2dcm failed
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.charset import convert_encodings, encode_string
from pydicom.valuerep import PersonName

from tests.peers import find_tool

DCMTK_SAMPLES_DIR = Path("/usr/share/doc/dcmtk/examples/wlistdb/OFFIS")

# (tag, VR, value): a value is a string, or for an SQ the list of its items.
Element = tuple[str, str, "str | list[list[Element]]"]

_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT"})
_TOOL_TIMEOUT = 60


class DumpError(RuntimeError):
    """A value cannot be written in a dump, or dump2dcm failed."""


# Writing


def encode_value(value: str, vr: str, charset: str) -> bytes:
    """The bytes of ``value`` in Specific Character Set ``charset`` ("" for none).

    Person names are encoded one component group at a time, each ISO 2022
    group introduced by its own escape sequence (PS3.5 6.1.2.5.3).
    """
    encodings = convert_encodings(charset.split("\\") if charset else [""])
    if vr == "PN":
        data = PersonName(value).encode(list(encodings))
    elif vr in _TEXT_VRS:
        data = encode_string(value, list(encodings))
    else:
        data = value.encode("ascii")
    if b"\n" in data or b"\r" in data:
        raise DumpError(f"A {vr} value with a line break cannot be written in a dump.")
    return data


def _lines(elements: Sequence[Element], charset: str) -> Iterator[bytes]:
    for tag, vr, value in elements:
        if isinstance(value, str):
            yield f"({tag}) {vr} [".encode() + encode_value(value, vr, charset) + b"]"
            continue
        yield f"({tag}) SQ".encode()
        for item in value:
            yield b"(fffe,e000) -"
            yield from _lines(item, charset)
            yield b"(fffe,e00d) -"
        yield b"(fffe,e0dd) -"


def dump_text(elements: Sequence[Element], charset: str) -> bytes:
    """A dump of ``elements``, values encoded in ``charset``.

    ``charset`` is the Specific Character Set as DICOM writes it, values
    separated by backslashes; it is not added to the elements.
    """
    return b"\n".join(_lines(elements, charset)) + b"\n"


def dump2dcm(dump_path: Path, dicom_path: Path) -> None:
    """Convert a dump into a DICOM file (Explicit VR Little Endian) with dump2dcm."""
    tool = find_tool("dump2dcm")
    if tool is None:
        raise DumpError("dump2dcm is not installed (Debian package dcmtk).")

    # +te: a dump without meta header names no transfer syntax of its own.
    command = [str(tool), "+te", str(dump_path), str(dicom_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, errors="replace", timeout=_TOOL_TIMEOUT
    )
    if result.returncode != 0:
        raise DumpError(
            f"dump2dcm could not convert {dump_path.name} (exit code "
            f"{result.returncode}):\n{result.stderr.strip()}"
        )


# Reading DCMTK's sample worklist


@dataclass(frozen=True)
class DcmtkSample:
    """Key facts of one of DCMTK's sample worklist items (``wklist<n>.dump``).

    All ten are ISO_IR 100 with ASCII values, scheduled in the 1990s; some
    have several Scheduled Station AE Titles, and ``wklist2.dump`` names two
    Accession Numbers, of which dump2dcm keeps the first.
    """

    file_name: str
    accession_number: str
    patient_name: str
    patient_id: str
    birth_date: str
    study_instance_uid: str
    requested_procedure_id: str
    modality: str
    scheduled_date: str
    scheduled_time: str
    scheduled_station_aes: tuple[str, ...]
    charset: str


_DUMP_LINE = re.compile(r"^\((\w{4},\w{4})\)\s+(\w\w|-)\s*(.*?)\s*$")
_ITEM, _ITEM_END = "fffe,e000", "fffe,e00d"


def dump_values(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Values by tag (``"0010,0010"``) at the top level and inside items.

    Good enough for dumps with one item, like DCMTK's samples. When a tag
    repeats at one level the first value wins, as in dump2dcm.
    """
    top: dict[str, str] = {}
    nested: dict[str, str] = {}
    depth = 0
    for line in text.splitlines():
        match = _DUMP_LINE.match(line)
        if match is None:
            continue
        tag, _vr, value = match.groups()
        tag = tag.lower()
        if tag in (_ITEM, _ITEM_END):
            depth += 1 if tag == _ITEM else -1
            continue
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        (top if depth == 0 else nested).setdefault(tag, value)
    return top, nested


def _sample_number(path: Path) -> int:
    return int(re.sub(r"\D", "", path.stem) or 0)


def dcmtk_sample_dumps(folder: Path = DCMTK_SAMPLES_DIR) -> list[Path]:
    """DCMTK's sample dump files, in the order of their numbers."""
    return sorted(folder.glob("wklist*.dump"), key=_sample_number)


def read_dcmtk_sample(dump_path: Path) -> DcmtkSample:
    """The key facts of one of DCMTK's sample dumps."""
    top, step = dump_values(dump_path.read_text(encoding="latin-1"))
    return DcmtkSample(
        file_name=f"dcmtk-{dump_path.stem}.wl",
        accession_number=top.get("0008,0050", ""),
        patient_name=top.get("0010,0010", ""),
        patient_id=top.get("0010,0020", ""),
        birth_date=top.get("0010,0030", ""),
        study_instance_uid=top.get("0020,000d", ""),
        requested_procedure_id=top.get("0040,1001", ""),
        modality=step.get("0008,0060", ""),
        scheduled_date=step.get("0040,0002", ""),
        scheduled_time=step.get("0040,0003", ""),
        scheduled_station_aes=tuple(step.get("0040,0001", "").split("\\")),
        charset=top.get("0008,0005", ""),
    )


def dcmtk_samples(folder: Path = DCMTK_SAMPLES_DIR) -> list[DcmtkSample]:
    """The key facts of all DCMTK's sample items, in the order of their numbers."""
    return [read_dcmtk_sample(path) for path in dcmtk_sample_dumps(folder)]
