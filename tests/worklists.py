"""Modality Worklist test data: our worklist items, and a writer of ``*.wl`` files.

Each item becomes one ``*.wl`` file, the format both wlmscpfs and Orthanc's
worklist plugin read, made the way DCMTK's own examples are: a dump text given
to dump2dcm (see :mod:`tests.dcmtk_dump`). The values in the dump are the bytes
of the item's own Specific Character Set, so an ISO 2022 name carries its
escape sequences exactly as PS3.5 Annex H (Japanese) and Annex I (Korean) show
them. Every file is read back with pydicom and must decode to the strings it
was made from. DCMTK's ten sample items can be written alongside.

Scheduled dates are fixed, or counted in days from a ``today`` given when the
files are written, so a session that starts just before midnight still finds
"today's" items.

Errors::

    WorklistFileError   a written file does not decode as it was written
    DumpError           (from tests.dcmtk_dump) dump2dcm failed
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.dcmtk_dump import (
    DCMTK_SAMPLES_DIR,
    DcmtkSample,
    DumpError,
    Element,
    dcmtk_sample_dumps,
    dcmtk_samples,
    dump2dcm,
    dump_text,
    encode_value,
    read_dcmtk_sample,
)

# Code Value, Coding Scheme Designator, Code Meaning (PS3.3 8.8).
Code = tuple[str, str, str]

WLMSCPFS_LOCKFILE = "lockfile"

# The names of PS3.5 Annex H.3.1 and Annex I.2, and the bytes the standard
# gives for them: each ideographic or phonetic component group starts with its
# own escape sequence, and the Japanese ones return to ASCII with ESC ( B.
JAPANESE_NAME = "Yamada^Tarou=山田^太郎=やまだ^たろう"
JAPANESE_NAME_BYTES = (
    b"Yamada^Tarou="
    b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B="
    b"\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"
)
KOREAN_NAME = "Hong^Gildong=洪^吉洞=홍^길동"
KOREAN_NAME_BYTES = (
    b"Hong^Gildong="
    b"\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7="
    b"\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf"
)


class WorklistFileError(RuntimeError):
    """A written worklist file does not decode as it was written."""


@dataclass(frozen=True)
class WorklistEntry:
    """One worklist item (PS3.4 K.6.1.2): one requested procedure, one step.

    ``scheduled_date`` is a fixed date, or a number of days from the day the
    files are written (0 today, -1 yesterday); :meth:`on` fixes it. ``charset``
    is the Specific Character Set value as DICOM writes it, backslashes
    between values (``\\ISO 2022 IR 87``), or "" for none (ASCII only).
    A ``requested_procedure_code`` of None leaves its sequence out.
    """

    key: str
    accession_number: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    study_instance_uid: str
    referring_physician: str
    requested_procedure_id: str
    requested_procedure_description: str
    requested_procedure_code: Code | None
    modality: str
    scheduled_date: datetime.date | int
    scheduled_time: str
    sps_id: str
    sps_description: str
    scheduled_station_ae: str
    protocol_code: Code | None
    charset: str
    scheduled_performing_physician: str = ""
    sps_status: str = "SCHEDULED"

    @property
    def file_name(self) -> str:
        """Name of the item's ``.wl`` file."""
        return f"{self.key}.wl"

    @property
    def charset_values(self) -> list[str]:
        """The values of Specific Character Set; [] for the default repertoire."""
        return self.charset.split("\\") if self.charset else []

    def scheduled_day(self, today: datetime.date) -> datetime.date:
        """The Scheduled Procedure Step Start Date, as a date."""
        if isinstance(self.scheduled_date, datetime.date):
            return self.scheduled_date
        return today + datetime.timedelta(days=self.scheduled_date)

    def scheduled_da(self, today: datetime.date) -> str:
        """The Scheduled Procedure Step Start Date as DICOM writes it (DA)."""
        return self.scheduled_day(today).strftime("%Y%m%d")

    def on(self, today: datetime.date) -> WorklistEntry:
        """This item with its scheduled date fixed for ``today``."""
        return replace(self, scheduled_date=self.scheduled_day(today))


def resolve_entries(
    entries: Iterable[WorklistEntry], today: datetime.date
) -> list[WorklistEntry]:
    """The items with their scheduled dates fixed for ``today``."""
    return [entry.on(today) for entry in entries]


def _entry(number: int, key: str, **fields: object) -> WorklistEntry:
    # IDs from the number and a UID from the key: the same in every run.
    uid = generate_uid(prefix=None, entropy_srcs=["pacsbridge-worklist", key])
    defaults: dict[str, object] = {
        "study_instance_uid": str(uid),
        "referring_physician": "",
        "requested_procedure_id": f"PBRP{number:04d}",
        "sps_id": f"PBSPS{number:04d}",
    }
    return WorklistEntry(key=key, **{**defaults, **fields})  # type: ignore[arg-type]


_SKIN: Code = ("PB-SKIN", "99PACSB", "Skin lesion photography")
_WOUND: Code = ("PB-WOUND", "99PACSB", "Wound photography")
_ENDOSCOPY: Code = ("PB-ENDO", "99PACSB", "Endoscopy capture")
_DOCUMENT: Code = ("PB-OTHER", "99PACSB", "Document capture")
_PHOTO_PROTOCOL: Code = ("PB-P-PHOTO", "99PACSB", "Standard photo protocol")
_VIDEO_PROTOCOL: Code = ("PB-P-VIDEO", "99PACSB", "Standard video protocol")

# fmt: off
OUR_ENTRIES: tuple[WorklistEntry, ...] = (
    _entry(
        1, "latin1-today", charset="ISO_IR 100", accession_number="PBWL0001",
        patient_name="Müller^Jürgen", patient_id="PBWL-P01", birth_date="19610214",
        sex="M", referring_physician="Schröder^Anna",
        requested_procedure_description="Hautläsion Rücken",
        requested_procedure_code=_SKIN, protocol_code=_PHOTO_PROTOCOL,
        modality="XC", scheduled_date=0, scheduled_time="083000",
        sps_description="Übersichtsfoto", scheduled_station_ae="PBCAM1",
    ),
    _entry(
        2, "latin1-yesterday", charset="ISO_IR 100", accession_number="PBWL0002",
        patient_name="Kierkegård^Søren", patient_id="PBWL-P02", birth_date="19550505",
        sex="M", referring_physician="Ødegaard^Åse",
        requested_procedure_description="Gastroskopi",
        requested_procedure_code=_ENDOSCOPY, protocol_code=_VIDEO_PROTOCOL,
        modality="ES", scheduled_date=-1, scheduled_time="141500",
        sps_description="Gastroskopi video", scheduled_station_ae="PBENDO1",
    ),
    _entry(
        3, "greek-tomorrow", charset="ISO_IR 192", accession_number="PBWL0003",
        patient_name="Παπαδοπούλου^Ελένη", patient_id="PBWL-P03",
        birth_date="19800101", sex="F", referring_physician="Γεωργίου^Νίκος",
        requested_procedure_description="Φωτογραφία τραύματος",
        requested_procedure_code=_WOUND, protocol_code=_PHOTO_PROTOCOL,
        modality="OT", scheduled_date=1, scheduled_time="090000",
        sps_description="Wound photo", scheduled_station_ae="PBCAM1",
    ),
    _entry(
        4, "cyrillic-today", charset="ISO_IR 192", accession_number="PBWL0004",
        patient_name="Кузнецова^Алёна", patient_id="PBWL-P04", birth_date="19920630",
        sex="F", referring_physician="Smith^John",
        requested_procedure_description="Колоноскопия",
        requested_procedure_code=_ENDOSCOPY, protocol_code=_VIDEO_PROTOCOL,
        modality="ES", scheduled_date=0, scheduled_time="101500",
        sps_description="Colonoscopy video", scheduled_station_ae="PBENDO1",
    ),
    _entry(
        5, "vietnamese-later", charset="ISO_IR 192", accession_number="PBWL0005",
        patient_name="Nguyễn^Thị Ánh", patient_id="PBWL-P05", birth_date="19731124",
        sex="F", requested_procedure_description="Ảnh chụp da",
        requested_procedure_code=_SKIN, protocol_code=_PHOTO_PROTOCOL,
        modality="XC", scheduled_date=10, scheduled_time="160000",
        sps_description="Skin photo", scheduled_station_ae="PBCAM2",
    ),
    _entry(
        6, "japanese-today", charset="\\ISO 2022 IR 87", accession_number="PBWL0006",
        patient_name=JAPANESE_NAME, patient_id="PBWL-P06", birth_date="19450812",
        sex="M", referring_physician="Suzuki^Ichiro",
        requested_procedure_description="皮膚写真",
        requested_procedure_code=_SKIN, protocol_code=_PHOTO_PROTOCOL,
        modality="XC", scheduled_date=0, scheduled_time="113000",
        sps_description="Skin photo", scheduled_station_ae="PBCAM1",
    ),
    _entry(
        7, "korean-past", charset="\\ISO 2022 IR 149", accession_number="PBWL0007",
        patient_name=KOREAN_NAME, patient_id="PBWL-P07", birth_date="19700301",
        sex="M", requested_procedure_description="Document scan",
        requested_procedure_code=_DOCUMENT, protocol_code=_PHOTO_PROTOCOL,
        modality="OT", scheduled_date=datetime.date(2024, 3, 15),
        scheduled_time="093000", sps_description="Document scan",
        scheduled_station_ae="PBCAM2",
    ),
    _entry(
        # PS3.5 Annex K.2's name, without its empty phonetic group.
        8, "chinese-past", charset="GB18030", accession_number="PBWL0008",
        patient_name="Wang^XiaoDong=王^小东", patient_id="PBWL-P08",
        birth_date="19881010", sex="M", requested_procedure_description="内镜检查",
        requested_procedure_code=_ENDOSCOPY, protocol_code=_VIDEO_PROTOCOL,
        modality="ES", scheduled_date=datetime.date(2023, 7, 4),
        scheduled_time="150000", sps_description="Endoscopy video",
        scheduled_station_ae="PBENDO1",
    ),
    _entry(
        9, "no-accession-today", charset="", accession_number="",
        patient_name="Doe^Jane", patient_id="PBWL-P09", birth_date="", sex="",
        requested_procedure_description="Photo without accession",
        requested_procedure_code=_DOCUMENT, protocol_code=_PHOTO_PROTOCOL,
        modality="OT", scheduled_date=0, scheduled_time="130000",
        sps_description="Document photo", scheduled_station_ae="PBCAM2",
    ),
    _entry(
        10, "no-code-past", charset="", accession_number="PBWL0010",
        patient_name="Roe^Richard", patient_id="PBWL-P10", birth_date="19990909",
        sex="O", requested_procedure_description="Photo without procedure code",
        requested_procedure_code=None, protocol_code=_PHOTO_PROTOCOL,
        modality="XC", scheduled_date=datetime.date(2020, 1, 2),
        scheduled_time="080000", sps_description="Photo",
        scheduled_station_ae="PBCAM1",
    ),
)
# fmt: on


# Writing the files


def _code_items(code: Code | None) -> list[list[Element]]:
    if code is None:
        return []
    value, scheme, meaning = code
    return [[("0008,0100", "SH", value), ("0008,0102", "SH", scheme),
             ("0008,0104", "LO", meaning)]]  # fmt: skip


def worklist_dump(entry: WorklistEntry, today: datetime.date) -> bytes:
    """The dump2dcm text of one item, its values in the item's character set.

    Without a Requested Procedure Code the sequence is left out, which its
    Type 1C allows when a Requested Procedure Description is present (PS3.4
    K.6.1.2.2). wlmscpfs ignores a file whose sequence is present but empty.
    """
    step: list[Element] = [
        ("0008,0060", "CS", entry.modality),
        ("0040,0001", "AE", entry.scheduled_station_ae),
        ("0040,0002", "DA", entry.scheduled_da(today)),
        ("0040,0003", "TM", entry.scheduled_time),
        ("0040,0006", "PN", entry.scheduled_performing_physician),
        ("0040,0007", "LO", entry.sps_description),
        ("0040,0009", "SH", entry.sps_id),
        ("0040,0020", "CS", entry.sps_status),
    ]
    if entry.protocol_code is not None:
        step.append(("0040,0008", "SQ", _code_items(entry.protocol_code)))

    elements: list[Element] = [
        ("0008,0050", "SH", entry.accession_number),
        ("0008,0090", "PN", entry.referring_physician),
        ("0010,0010", "PN", entry.patient_name),
        ("0010,0020", "LO", entry.patient_id),
        ("0010,0030", "DA", entry.birth_date),
        ("0010,0040", "CS", entry.sex),
        ("0020,000d", "UI", entry.study_instance_uid),
        ("0032,1060", "LO", entry.requested_procedure_description),
        ("0040,0100", "SQ", [step]),
        ("0040,1001", "SH", entry.requested_procedure_id),
        # Type 2 in worklist answers (PS3.4 K.6.1.2.2): present, empty.
        ("0008,1110", "SQ", []),
        ("0008,1120", "SQ", []),
    ]
    if entry.requested_procedure_code is not None:
        code = _code_items(entry.requested_procedure_code)
        elements.append(("0032,1064", "SQ", code))
    if entry.charset:
        elements.insert(0, ("0008,0005", "CS", entry.charset))
    return dump_text(elements, entry.charset)


def _raw_value(ds: Dataset, keyword: str) -> bytes:
    # Read before pydicom converts the element, so the bytes are the file's.
    value = ds.get_item(keyword).value
    return bytes(value or b"").rstrip(b" \0")


def _check_entry_file(path: Path, entry: WorklistEntry, today: datetime.date) -> None:
    ds = dcmread(path)
    name_bytes = encode_value(entry.patient_name, "PN", entry.charset)
    step = ds.ScheduledProcedureStepSequence[0]
    found = {
        "PatientName bytes": _raw_value(ds, "PatientName") == name_bytes,
        "PatientName": str(ds.PatientName) == entry.patient_name,
        "ReferringPhysicianName": (
            str(ds.ReferringPhysicianName) == entry.referring_physician
        ),
        "RequestedProcedureDescription": (
            ds.RequestedProcedureDescription == entry.requested_procedure_description
        ),
        "AccessionNumber": ds.AccessionNumber == entry.accession_number,
        "ScheduledProcedureStepStartDate": (
            step.ScheduledProcedureStepStartDate == entry.scheduled_da(today)
        ),
    }
    wrong = [keyword for keyword, same in found.items() if not same]
    if wrong:
        raise WorklistFileError(
            f"{path.name} does not decode as it was written: {', '.join(wrong)}."
        )


def _check_sample_file(path: Path, sample: DcmtkSample) -> None:
    ds = dcmread(path)
    step = ds.ScheduledProcedureStepSequence[0]
    found = (ds.AccessionNumber, ds.PatientID, step.ScheduledProcedureStepStartDate)
    if found != (sample.accession_number, sample.patient_id, sample.scheduled_date):
        raise WorklistFileError(f"{path.name} does not hold what its dump says.")


def write_worklist_files(
    folder: Path,
    entries: Iterable[WorklistEntry] = OUR_ENTRIES,
    *,
    include_dcmtk_samples: bool = True,
    today: datetime.date | None = None,
) -> list[Path]:
    """Write one ``<key>.wl`` per item (and ``dcmtk-wklist<n>.wl`` per sample).

    ``today`` (default: the real today) fixes the relative scheduled dates.
    The dump texts stay in ``folder/dumps`` for anyone debugging a file.
    Returns the written ``.wl`` paths, ours first, in order.
    """
    today = today or datetime.date.today()
    dump_dir = folder / "dumps"
    dump_dir.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    for entry in entries:
        dump_path = dump_dir / f"{entry.key}.dump"
        dump_path.write_bytes(worklist_dump(entry, today))
        written.append(folder / entry.file_name)
        dump2dcm(dump_path, written[-1])
        _check_entry_file(written[-1], entry, today)

    if include_dcmtk_samples:
        written += _write_dcmtk_samples(folder)
    return written


def _write_dcmtk_samples(folder: Path) -> list[Path]:
    dumps = dcmtk_sample_dumps()
    if not dumps:
        raise DumpError(f"DCMTK's sample worklist is missing from {DCMTK_SAMPLES_DIR}.")

    written = []
    for dump_path in dumps:
        sample = read_dcmtk_sample(dump_path)
        written.append(folder / sample.file_name)
        dump2dcm(dump_path, written[-1])
        _check_sample_file(written[-1], sample)
    return written


@dataclass(frozen=True)
class WorklistFiles:
    """Worklist files written for one day, and what they hold.

    ``entries`` are ours with their dates fixed for ``today``, in the order of
    their files; ``dcmtk_samples`` is empty when the samples were left out.
    """

    folder: Path
    paths: tuple[Path, ...]
    today: datetime.date
    entries: tuple[WorklistEntry, ...]
    dcmtk_samples: tuple[DcmtkSample, ...]

    def entry(self, key: str) -> WorklistEntry:
        """Our item called ``key``."""
        [found] = [entry for entry in self.entries if entry.key == key]
        return found

    def on_day(self, day: datetime.date) -> list[WorklistEntry]:
        """Our items scheduled on ``day``."""
        return [e for e in self.entries if e.scheduled_day(self.today) == day]


def write_worklist(
    folder: Path,
    entries: Iterable[WorklistEntry] = OUR_ENTRIES,
    *,
    include_dcmtk_samples: bool = True,
    today: datetime.date | None = None,
) -> WorklistFiles:
    """:func:`write_worklist_files`, returning what was written with the paths."""
    today = today or datetime.date.today()
    entries = resolve_entries(entries, today)
    paths = write_worklist_files(
        folder, entries, include_dcmtk_samples=include_dcmtk_samples, today=today
    )
    samples = dcmtk_samples() if include_dcmtk_samples else []
    return WorklistFiles(folder, tuple(paths), today, tuple(entries), tuple(samples))


def install_for_wlmscpfs(
    files: Iterable[Path], data_files_path: Path, ae_title: str
) -> Path:
    """Copy worklist files where wlmscpfs looks for them; return that folder.

    wlmscpfs serves ``<data_files_path>/<called AE title>/*.wl`` and locks the
    ``lockfile`` it expects in that folder while it searches. Files already
    there are removed first, so the folder holds exactly ``files``.
    """
    database = data_files_path / ae_title
    database.mkdir(parents=True, exist_ok=True)
    for old in database.glob("*.wl"):
        old.unlink()
    (database / WLMSCPFS_LOCKFILE).touch()
    for path in files:
        shutil.copy2(path, database / path.name)
    return database
