"""The DICOM objects of one job: every input checked first, then built one at a time.

Checking every file before anything is sent means a bad file stops the whole job and
nothing of it reaches a destination. Building lazily afterwards keeps memory flat in
the number of pictures: a sender holds the object on the wire and the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import UID, SecondaryCaptureImageStorage

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.encoding import BuiltObject
from pacsbridge.dicom.modules import SeriesStamp
from pacsbridge.dicom.secondary_capture import build_secondary_capture
from pacsbridge.dicom.uids import new_uid
from pacsbridge.errors import InputRejected
from pacsbridge.media.stills import InputCheck, Still, load_still

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedObject:
    """One input file and the identity its DICOM object will have."""

    path: Path
    sop_class_uid: UID
    sop_instance_uid: UID
    transfer_syntax: UID
    instance_number: int
    check: InputCheck | None = None  # spares the build a second parse


class JobObjects:
    """The planned objects of one job and the means to build each of them."""

    def __init__(
        self,
        planned: Sequence[PlannedObject],
        context: CaptureContext,
        series: SeriesStamp,
        settings: Settings,
    ) -> None:
        self.planned = tuple(planned)
        self.context = context
        self.series = series
        self.settings = settings

    @classmethod
    def plan(
        cls,
        paths: Sequence[Path],
        context: CaptureContext,
        settings: Settings,
        on_checked: Callable[[Path], None] | None = None,
    ) -> JobObjects:
        """Check every input; InputRejected lists every file that cannot be used."""
        if not paths:
            raise InputRejected(Path("."), "no input file was given")
        planned: list[PlannedObject] = []
        problems: list[InputRejected] = []
        seen: set[object] = set()
        for number, path in enumerate(paths, start=1):
            identity = _identity(path)
            if identity in seen:
                # Twice the same picture is a slip, not two images of the patient.
                problems.append(InputRejected(path, "is given more than once"))
                continue
            seen.add(identity)
            try:
                still = load_still(path, settings.image)
            except InputRejected as exc:
                problems.append(exc)
                continue
            finally:
                if on_checked is not None:
                    on_checked(path)
            planned.append(_plan_still(path, still, number))
        if problems:
            raise InputRejected.many(problems)
        series = SeriesStamp(
            study_instance_uid=UID(context.study_instance_uid or new_uid()),
            series_instance_uid=new_uid(),
            series_number=settings.series.number,
            created=dt.datetime.now().astimezone(),
            new_study=_begins_study(context),
        )
        return cls(planned, context, series, settings)

    def build(self, obj: PlannedObject) -> BuiltObject:
        """The object for ``obj``; its file is read and converted again."""
        still = load_still(obj.path, self.settings.image, obj.check)
        built = build_secondary_capture(
            still,
            self.context,
            self.series,
            self.settings.equipment,
            obj.sop_instance_uid,
            obj.instance_number,
        )
        logger.debug(
            "built %s from input %d", obj.sop_instance_uid, obj.instance_number
        )
        return built

    def __iter__(self) -> Iterator[tuple[PlannedObject, BuiltObject]]:
        for obj in self.planned:
            yield obj, self.build(obj)

    def __len__(self) -> int:
        return len(self.planned)


def _identity(path: Path) -> object:
    # Device and inode see through links and relative paths; a file that cannot
    # be stat'ed is reported by its check, so its spelling will do here.
    try:
        stat = path.stat()
    except (OSError, RuntimeError):
        return str(path)
    return (stat.st_dev, stat.st_ino)


def _plan_still(path: Path, still: Still, number: int) -> PlannedObject:
    return PlannedObject(
        path=path,
        sop_class_uid=SecondaryCaptureImageStorage,
        sop_instance_uid=new_uid(),
        transfer_syntax=still.transfer_syntax,
        instance_number=number,
        check=still.check,
    )


def _begins_study(context: CaptureContext) -> bool:
    # A scheduled study is begun by the modality that images it (IHE RAD TF-2x
    # A.1): its Study Date and Time are ours, though its UID came from the order.
    scheduled = context.order is not None and context.order.source == "worklist"
    return scheduled or not context.study_instance_uid
