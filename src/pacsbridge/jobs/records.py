"""A job's context and planned objects as stored rows, and back.

What is stored is what the objects are built from, so every attempt builds the
same objects: the same SOP Instance UIDs, series and study, the same prepared
video files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydicom.uid import UID

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext, Code, Order, Patient
from pacsbridge.dicom.modules import SeriesStamp
from pacsbridge.dicom.objects import JobObjects, PlannedObject
from pacsbridge.dicom.video_photographic import VideoStream
from pacsbridge.jobs.models import Item, Job
from pacsbridge.jobs.store import NewItem
from pacsbridge.media.stills import InputCheck


def context_record(context: CaptureContext) -> dict[str, object]:
    return dataclasses.asdict(context)


def context_from_record(record: dict[str, Any]) -> CaptureContext:
    fields = dict(record)
    fields["patient"] = Patient(**fields["patient"])
    if fields.get("order") is not None:
        order = dict(fields["order"])
        for key in ("requested_procedure_codes", "scheduled_protocol_codes"):
            order[key] = tuple(Code(**code) for code in order.get(key, ()))
        fields["order"] = Order(**order)
    return CaptureContext(**fields)


def series_record(series: SeriesStamp) -> dict[str, object]:
    return {
        "study_instance_uid": str(series.study_instance_uid),
        "series_instance_uid": str(series.series_instance_uid),
        "series_number": series.series_number,
        "created": series.created.isoformat(),
        "new_study": series.new_study,
    }


def series_from_record(record: dict[str, Any]) -> SeriesStamp:
    return SeriesStamp(
        study_instance_uid=UID(record["study_instance_uid"]),
        series_instance_uid=UID(record["series_instance_uid"]),
        series_number=int(record["series_number"]),
        created=dt.datetime.fromisoformat(record["created"]),
        new_study=bool(record["new_study"]),
    )


def new_items(
    job: JobObjects, filenames: dict[Path, str], data_dir: Path
) -> list[NewItem]:
    """The rows of a planned job; ``filenames`` maps inputs to the client's names."""
    return [
        NewItem(
            filename=filenames[obj.path],
            path=str(obj.path.relative_to(data_dir)),
            sop_class_uid=str(obj.sop_class_uid),
            sop_instance_uid=str(obj.sop_instance_uid),
            transfer_syntax=str(obj.transfer_syntax),
            position=obj.instance_number,
            video=_video_record(obj, data_dir),
            notes=obj.notes,
        )
        for obj in job.planned
    ]


def restore(
    job: Job, settings: Settings, items: list[Item] | None = None
) -> JobObjects:
    """The JobObjects of a stored job, or of some of its items."""
    data_dir = settings.local.data_dir
    planned = [_planned(item, data_dir) for item in items or job.items]
    return JobObjects(
        planned,
        context_from_record(job.context),
        series_from_record(job.series),
        settings,
    )


def _video_record(obj: PlannedObject, data_dir: Path) -> dict[str, object] | None:
    if obj.video is None or obj.check is None:
        return None
    video = obj.video
    return {
        "file": str(video.file.relative_to(data_dir)),
        "size": video.size,
        "rows": video.rows,
        "columns": video.columns,
        "frame_count": video.frame_count,
        "frame_rate": str(video.frame_rate),
        "source_format": video.source_format,
        "derived": video.derived,
        "check": [obj.check.size, obj.check.mtime_ns, obj.check.inode],
    }


def _planned(item: Item, data_dir: Path) -> PlannedObject:
    video = check = None
    if item.video is not None:
        record = item.video
        size, mtime_ns, inode = (int(v) for v in record["check"])  # type: ignore[attr-defined]
        check = InputCheck(size, mtime_ns, inode)
        video = VideoStream(
            file=data_dir / str(record["file"]),
            size=int(str(record["size"])),
            transfer_syntax=UID(item.transfer_syntax),
            rows=int(str(record["rows"])),
            columns=int(str(record["columns"])),
            frame_count=int(str(record["frame_count"])),
            frame_rate=Fraction(str(record["frame_rate"])),
            source_format=str(record["source_format"]),
            derived=bool(record["derived"]),
            identity=(size, mtime_ns, inode),
        )
    return PlannedObject(
        path=data_dir / item.path,
        sop_class_uid=UID(item.sop_class_uid),
        sop_instance_uid=UID(item.sop_instance_uid),
        transfer_syntax=UID(item.transfer_syntax),
        instance_number=item.position,
        check=check,
        video=video,
        notes=tuple(item.notes),
    )
