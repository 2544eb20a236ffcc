"""The embedded demo PACS and worklist used by the quick start.

A pynetdicom Storage SCP on 127.0.0.1 keeps every object it receives as a DICOM file
in the data folder, one folder per study. A pynetdicom Modality Worklist SCP offers
a handful of made-up patients scheduled for today. ``run`` finds the first of them
in the worklist, sends the bundled sample photos to the PACS filed under that
entry, and shows what was stored where.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import re
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityWorklistInformationFind,
    Verification,
)
from rich.console import Console

from pacsbridge import lookup
from pacsbridge.config import DicomDestination, LookupSettings, Settings
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.dicom.uids import new_uid
from pacsbridge.errors import ConfigError
from pacsbridge.lookup.apply import TypedContext, context_from_order

logger = logging.getLogger(__name__)

DEMO_AE_TITLE = "DEMOPACS"
DEMO_WORKLIST_AE_TITLE = "DEMOWL"
# Made-up patients: (accession, name, ID, birth date, sex, procedure, modality).
DEMO_ENTRIES = (
    ("DEMO-A001", "Demo^Patient", "DEMO-0001", "19700101", "O",
     "Wound photography", "XC"),
    ("DEMO-A002", "Müller^Anna", "DEMO-0002", "19581224", "F",
     "Skin lesion photography", "XC"),
    ("DEMO-A003", "Yamada^Tarou=山田^太郎=やまだ^たろう", "DEMO-0003", "19800515", "M",
     "Surgical site photography", "XC"),
    ("DEMO-A004", "Ivanova^Olga", "DEMO-0004", "19920302", "F",
     "Gastroscopy", "ES"),
)  # fmt: skip


class _DemoServer:
    """A pynetdicom SCP of the demo on 127.0.0.1, on a port the system picks."""

    label = "demo server"

    def __init__(self, ae_title: str) -> None:
        self.ae_title = ae_title
        self._ae = AE(ae_title=ae_title)
        self._ae.add_supported_context(Verification)
        self.port = 0

    def _start(self, handlers: list[Any]) -> None:
        server = self._ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=handlers
        )
        if server is None:  # only a blocking server returns nothing
            raise ConfigError(f"the {self.label} could not start")
        self.port = int(server.server_address[1])
        logger.info("%s %s on 127.0.0.1:%d", self.label, self.ae_title, self.port)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ae.shutdown()


class DemoPacs(_DemoServer):
    """A Storage SCP that writes what it receives under ``folder``."""

    label = "demo PACS"

    def __init__(self, folder: Path, ae_title: str = DEMO_AE_TITLE) -> None:
        super().__init__(ae_title)
        self.folder = folder
        self.stored: list[Path] = []
        self._lock = threading.Lock()
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                self._ae.add_supported_context(
                    cx.abstract_syntax, ALL_TRANSFER_SYNTAXES
                )

    def __enter__(self) -> DemoPacs:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{self.folder}: cannot create ({exc.strerror})"
            ) from None
        self._start([(evt.EVT_C_STORE, self._on_store)])
        return self

    def destination(self) -> DicomDestination:
        return DicomDestination(
            kind="dicom",
            name="demo-pacs",
            ae_title=self.ae_title,
            host="127.0.0.1",
            port=self.port,
        )

    def _on_store(self, event: evt.Event) -> int:
        meta = event.file_meta
        study = UID(str(event.dataset.StudyInstanceUID))
        target = self.folder / study / f"{meta.MediaStorageSOPInstanceUID}.dcm"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(event.encoded_dataset())
        except OSError:
            logger.exception("demo PACS cannot write %s", target.name)
            return 0xA700  # PS3.4 B.2.3: refused, out of resources
        with self._lock:
            self.stored.append(target)
        return 0x0000


class DemoWorklist(_DemoServer):
    """A Modality Worklist SCP with ``DEMO_ENTRIES`` scheduled for today.

    It matches what the demo needs (PS3.4 K.6.1.2): a patient name with ``*``
    and ``?`` (case-insensitive), the exact Patient ID and accession, and the
    scheduled step's modality and date or date range. Answers are UTF-8.
    """

    label = "demo worklist"

    def __init__(self, ae_title: str = DEMO_WORKLIST_AE_TITLE) -> None:
        super().__init__(ae_title)
        self.entries = [
            _demo_entry(number, *e) for number, e in enumerate(DEMO_ENTRIES)
        ]
        self._ae.add_supported_context(ModalityWorklistInformationFind)

    def __enter__(self) -> DemoWorklist:
        self._start([(evt.EVT_C_FIND, self._on_find)])
        return self

    def lookup_settings(self) -> LookupSettings:
        """``[lookup]`` settings that point at this worklist."""
        return LookupSettings(
            provider="worklist",
            ae_title=self.ae_title,
            host="127.0.0.1",
            port=self.port,
        )

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        for entry in self.entries:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if _matches(query, entry):
                yield 0xFF00, _answer(query, entry)
        yield 0x0000, None


def _demo_entry(
    number: int,
    accession: str,
    name: str,
    patient_id: str,
    birth_date: str,
    sex: str,
    procedure: str,
    modality: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = "Demo^Doctor"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = sex
    ds.StudyInstanceUID = new_uid()
    ds.RequestedProcedureID = f"DEMO-RP{number + 1}"
    ds.RequestedProcedureDescription = procedure
    step = Dataset()
    step.Modality = modality
    step.ScheduledProcedureStepStartDate = dt.date.today().strftime("%Y%m%d")
    step.ScheduledProcedureStepStartTime = f"{9 + number:02d}0000"
    step.ScheduledProcedureStepID = f"DEMO-SPS{number + 1}"
    step.ScheduledProcedureStepDescription = procedure
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def _matches(query: Dataset, entry: Dataset) -> bool:
    name = str(query.get("PatientName", "") or "")
    if name and not re.fullmatch(
        fnmatch.translate(name), str(entry.PatientName), re.IGNORECASE
    ):
        return False
    for keyword in ("PatientID", "AccessionNumber", "StudyInstanceUID"):
        wanted = str(query.get(keyword, "") or "")
        if wanted and wanted != entry.get(keyword):
            return False
    steps = query.get("ScheduledProcedureStepSequence") or [Dataset()]
    step, scheduled = steps[0], entry.ScheduledProcedureStepSequence[0]
    modality = str(step.get("Modality", "") or "")
    if modality and modality != scheduled.Modality:
        return False
    dates = str(step.get("ScheduledProcedureStepStartDate", "") or "")
    if dates:
        first, _, last = dates.partition("-") if "-" in dates else (dates, "", dates)
        day = scheduled.ScheduledProcedureStepStartDate
        return (not first or first <= day) and (not last or day <= last)
    return True


def _answer(query: Dataset, entry: Dataset) -> Dataset:
    # The keys asked for, with the entry's values (PS3.4 C.2.2.1.1).
    answer = Dataset()
    answer.SpecificCharacterSet = entry.SpecificCharacterSet
    for elem in query:
        if elem.keyword == "SpecificCharacterSet":
            continue
        if elem.keyword in entry:
            answer[elem.tag] = entry[elem.tag]
        else:
            answer[elem.tag] = elem
    return answer


def sample_photos() -> list[Path]:
    """The photos bundled with the package for the demo."""
    folder = resources.files("pacsbridge") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jpg"))


def run(settings: Settings, data_dir: Path, console: Console) -> int:
    """Find the first demo patient in the demo worklist and send the sample
    photos to the demo PACS filed under that entry; the exit code."""
    with DemoWorklist() as worklist, DemoPacs(data_dir / "demo-pacs") as pacs:
        dest = pacs.destination()
        console.print(
            f"Demo worklist {worklist.ae_title} on 127.0.0.1:{worklist.port} with "
            f"{len(worklist.entries)} patients scheduled today; demo PACS "
            f"{dest.ae_title} on {dest.host}:{dest.port}, storing into {pacs.folder}",
            highlight=False,
        )
        demo = settings.model_copy(update={"lookup": worklist.lookup_settings()})
        order = lookup.worklist_entry(demo, DEMO_ENTRIES[0][0])
        context, _ = context_from_order(
            order, TypedContext(series_description="Sample photos")
        )
        console.print(
            f"Worklist entry {order.accession_number}: {order.patient_name} "
            f"({order.patient_id}), {order.description}",
            highlight=False,
        )
        job = JobObjects.plan(sample_photos(), context, settings)
        report = dimse.store(dest, settings.local, job)
    for path in pacs.stored:
        console.print(f"  stored {path}", highlight=False)
    console.print(
        f"{report.count('stored')} of {len(job)} sample photos stored for the demo "
        f"patient in {report.seconds:.1f} s."
        + (f" {report.error}" if report.error else ""),
        highlight=False,
    )
    return 0 if report.delivered else 1
