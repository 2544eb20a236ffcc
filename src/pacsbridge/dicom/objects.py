"""The DICOM objects of one job: every input checked first, then built one at a time.

Checking every file before anything is sent means a bad file stops the whole job and
nothing of it reaches a destination. Videos are probed, and remuxed or transcoded
into the job's work folder, at that time too: a stream that cannot be made true is
a rejected input, not a half-sent study. Building lazily afterwards keeps memory
flat in the number of pictures: a sender holds the object on the wire and the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import UID, SecondaryCaptureImageStorage, VideoPhotographicImageStorage

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.encoding import BuiltObject
from pacsbridge.dicom.modules import SeriesStamp
from pacsbridge.dicom.secondary_capture import build_secondary_capture
from pacsbridge.dicom.uids import new_uid
from pacsbridge.dicom.video_photographic import VideoStream, build_video_photographic
from pacsbridge.errors import ConfigError, InputRejected
from pacsbridge.media import kinds, video
from pacsbridge.media.stills import InputCheck, Still, load_still
from pacsbridge.media.transcode import PreparedVideo, prepare_video, split_video

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
    video: VideoStream | None = None  # for videos: the stream to wrap
    notes: tuple[str, ...] = ()  # what was changed on the way, for the user


class JobObjects:
    """The planned objects of one job and the means to build each of them."""

    def __init__(
        self,
        planned: Sequence[PlannedObject],
        context: CaptureContext,
        series: SeriesStamp,
        settings: Settings,
        work: _WorkFolder | None = None,
    ) -> None:
        self.planned = tuple(planned)
        self.context = context
        self.series = series
        self.settings = settings
        self._work = work

    def close(self) -> None:
        """Remove the job's remuxed and transcoded videos."""
        if self._work is not None:
            self._work.remove()

    def __enter__(self) -> JobObjects:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def plan(
        cls,
        paths: Sequence[Path],
        context: CaptureContext,
        settings: Settings,
        on_checked: Callable[[Path], None] | None = None,
        work_dir: Path | None = None,
    ) -> JobObjects:
        """Check every input; InputRejected lists every file that cannot be used.

        Videos that must be remuxed or transcoded are written to ``work_dir``,
        kept for a stored job's later attempts; without it, to a folder under
        ``local.data_dir`` that :meth:`close` removes.
        """
        if not paths:
            raise InputRejected(Path("."), "no input file was given")
        work = _WorkFolder(settings.local.data_dir, work_dir)
        planned: list[PlannedObject] = []
        problems: list[InputRejected] = []
        seen: set[object] = set()
        try:
            for path in paths:
                identity = _identity(path)
                if identity in seen:
                    # Twice the same picture is a slip, not two images of the patient.
                    problems.append(InputRejected(path, "is given more than once"))
                    continue
                seen.add(identity)
                try:
                    planned += _plan_input(path, settings, work, len(planned) + 1)
                except InputRejected as exc:
                    problems.append(exc)
                finally:
                    if on_checked is not None:
                        on_checked(path)
            if problems:
                raise InputRejected.many(problems)
        except BaseException:
            work.remove()
            raise
        series = SeriesStamp(
            study_instance_uid=UID(context.study_instance_uid or new_uid()),
            series_instance_uid=new_uid(),
            series_number=settings.series.number,
            created=dt.datetime.now().astimezone(),
            new_study=_begins_study(context),
        )
        return cls(planned, context, series, settings, work)

    def build(self, obj: PlannedObject) -> BuiltObject:
        """The object for ``obj``; its file is read and converted again."""
        if obj.video is not None:
            _check_unchanged(obj)
            return build_video_photographic(
                obj.video,
                self.context,
                self.series,
                self.settings.equipment,
                obj.sop_instance_uid,
                obj.instance_number,
            )
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


def _plan_input(
    path: Path, settings: Settings, work: _WorkFolder, number: int
) -> list[PlannedObject]:
    if not kinds.is_video(path):
        return [_plan_still(path, load_still(path, settings.image), number)]
    if not settings.video.enabled:
        raise InputRejected(
            path, "is a video, and videos are turned off here (video.enabled)"
        )
    size = path.stat().st_size
    if size > settings.video.max_file_size:
        raise InputRejected(
            path,
            f"is {size} bytes, more than video.max_file_size "
            f"({settings.video.max_file_size})",
        )
    info = video.probe(path)
    prepared = prepare_video(path, info, settings.video, work.path())
    limit = settings.video.max_object_size
    parts = split_video(prepared, limit, work.path())
    return [
        _plan_video(path, part, info, number + index, limit)
        for index, part in enumerate(parts)
    ]


def _plan_still(path: Path, still: Still, number: int) -> PlannedObject:
    return PlannedObject(
        path=path,
        sop_class_uid=SecondaryCaptureImageStorage,
        sop_instance_uid=new_uid(),
        transfer_syntax=still.transfer_syntax,
        instance_number=number,
        check=still.check,
    )


def _plan_video(
    path: Path,
    prepared: PreparedVideo,
    source: video.VideoInfo,
    number: int,
    limit: int,
) -> PlannedObject:
    info = prepared.info
    stat = prepared.file.stat()
    stream = VideoStream(
        file=prepared.file,
        size=stat.st_size,
        transfer_syntax=prepared.transfer_syntax,
        rows=info.height,
        columns=info.width,
        frame_count=info.frame_count,
        frame_rate=info.frame_rate,
        source_format=source.codec,
        derived=prepared.path_taken == "transcoded",
        identity=(stat.st_size, stat.st_mtime_ns, stat.st_ino),
    )
    logger.info(
        "video input %d: %s, %s", number, prepared.path_taken, prepared.transfer_syntax
    )
    taken = f"{prepared.path_taken}, as {prepared.transfer_syntax.name}"
    if prepared.reasons:
        taken += f" ({'; '.join(prepared.reasons)})"
    oversize: tuple[str, ...] = ()
    if stat.st_size > limit:
        # split_video cuts at key frames only: one group of pictures is whole.
        oversize = (
            f"{stat.st_size} bytes, more than video.max_object_size: its key "
            "frames are too far apart to cut it there",
        )
    return PlannedObject(
        path=path,
        sop_class_uid=VideoPhotographicImageStorage,
        sop_instance_uid=new_uid(),
        transfer_syntax=prepared.transfer_syntax,
        instance_number=number,
        check=InputCheck(stat.st_size, stat.st_mtime_ns, stat.st_ino),
        video=stream,
        notes=(taken, *prepared.notes, *oversize),
    )


def _check_unchanged(obj: PlannedObject) -> None:
    assert obj.video is not None and obj.check is not None
    try:
        stat = obj.video.file.stat()
    except OSError as exc:
        raise InputRejected(obj.path, f"cannot be read: {exc.strerror}") from exc
    now = InputCheck(stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if not now.same_file(obj.check):
        raise InputRejected(obj.path, "has changed since it was checked")


_STALE = 24 * 3600  # seconds: no job of the command line runs this long


def _sweep(parent: Path) -> None:
    # A job killed outright (kill -9, a power cut) leaves its folder behind:
    # video of a patient at rest. The next job removes what is a day old.
    cutoff = time.time() - _STALE
    for folder in parent.glob("job-*"):
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


class _WorkFolder:
    """A job's folder for remuxed and transcoded videos, made when first needed.

    It lives under the data folder, not /tmp: a transcoded video can be as large
    as its input, and /tmp is often a small RAM disk.
    """

    def __init__(self, data_dir: Path, fixed: Path | None = None) -> None:
        self._data_dir = data_dir
        self._fixed = fixed
        self._path: Path | None = None

    def path(self) -> Path:
        if self._fixed is not None:
            self._fixed.mkdir(parents=True, exist_ok=True)
            return self._fixed
        if self._path is None:
            parent = self._data_dir / "work"
            try:
                parent.mkdir(parents=True, exist_ok=True)
                _sweep(parent)
                self._path = Path(tempfile.mkdtemp(prefix="job-", dir=parent))
            except OSError as exc:
                raise ConfigError(
                    f"cannot make a work folder in {parent} (local.data_dir): "
                    f"{exc.strerror}"
                ) from exc
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None


def _begins_study(context: CaptureContext) -> bool:
    # A scheduled study is begun by the modality that images it (IHE RAD TF-2x
    # A.1): its Study Date and Time are ours, though its UID came from the order.
    scheduled = context.order is not None and context.order.source == "worklist"
    return scheduled or not context.study_instance_uid
