"""The embedded demo PACS used by the quick start.

A pynetdicom Storage SCP on 127.0.0.1 keeps every object it receives as a DICOM file
in the data folder, one folder per study. ``run`` sends the bundled sample photos to
it for a demo patient and shows what was stored where.
"""

from __future__ import annotations

import logging
import threading
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from rich.console import Console

from pacsbridge.config import DicomDestination, Settings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.errors import ConfigError

logger = logging.getLogger(__name__)

DEMO_AE_TITLE = "DEMOPACS"
DEMO_PATIENT = Patient("DEMO-0001", "Demo^Patient", "19700101", "O")


class DemoPacs:
    """A Storage SCP that writes what it receives under ``folder``."""

    def __init__(self, folder: Path, ae_title: str = DEMO_AE_TITLE) -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.stored: list[Path] = []
        self._lock = threading.Lock()
        self._ae = AE(ae_title=ae_title)
        self._ae.add_supported_context(Verification)
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                self._ae.add_supported_context(
                    cx.abstract_syntax, ALL_TRANSFER_SYNTAXES
                )
        self.port = 0

    def __enter__(self) -> DemoPacs:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{self.folder}: cannot create ({exc.strerror})"
            ) from None
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store)]
        server = self._ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=handlers
        )
        if server is None:  # only a blocking server returns nothing
            raise ConfigError("the demo PACS could not start")
        self.port = int(server.server_address[1])
        logger.info("demo PACS %s listening on 127.0.0.1:%d", self.ae_title, self.port)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ae.shutdown()

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


def sample_photos() -> list[Path]:
    """The photos bundled with the package for the demo."""
    folder = resources.files("pacsbridge") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jpg"))


def run(settings: Settings, data_dir: Path, console: Console) -> int:
    """Send the sample photos to a fresh demo PACS; the exit code."""
    context = CaptureContext(
        patient=DEMO_PATIENT,
        study_description="PacsBridge demo",
        series_description="Sample photos",
    )
    with DemoPacs(data_dir / "demo-pacs") as pacs:
        dest = pacs.destination()
        console.print(
            f"Demo PACS {dest.ae_title} listening on {dest.host}:{dest.port}, "
            f"storing into {pacs.folder}",
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
