"""The command line: ``pacsbridge [--config FILE] [--log-level LEVEL] COMMAND``.

Exit codes: 0 done; 1 delivery failed; 2 usage or configuration error; 3 input
rejected.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from pacsbridge import __version__, logs
from pacsbridge.config import Destination, DicomDestination, Settings, load_settings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.errors import ConfigError, InputRejected, PacsBridgeError

logger = logging.getLogger(__name__)
# Messages carry file names, AE titles and peers' comments: printed as they are,
# never read as Rich markup.
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

app = typer.Typer(
    name="pacsbridge",
    help=(
        "PacsBridge turns clinical photos into DICOM objects for the right patient "
        "and stores them in your PACS.\n\n"
        "Exit codes: 0 done, 1 delivery failed, 2 usage or configuration error, "
        "3 input rejected."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (TOML). Default: $PACSBRIDGE_CONFIG, else "
        "./pacsbridge.toml when present, else built-in defaults.",
        dir_okay=False,
        metavar="FILE",
    ),
]
Files = Annotated[
    list[Path],
    typer.Argument(
        help="Photos to convert: JPEG, PNG, HEIC, TIFF, BMP, WebP, GIF.",
        readable=False,  # an unreadable file is a rejected input (exit 3), ours
        metavar="FILE",
    ),
]


class _State:
    config: Path | None = None
    log_level: str | None = None


_state = _State()


@app.callback()
def _main(
    config: ConfigOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="DEBUG, INFO, WARNING or ERROR (overrides local.log_level).",
            metavar="LEVEL",
        ),
    ] = None,
) -> None:
    _state.config = config
    _state.log_level = log_level.upper() if log_level else None


def _settings() -> Settings:
    settings = load_settings(_state.config)
    level = _state.log_level or settings.local.log_level
    if level not in logs.LEVELS:
        raise ConfigError(f"--log-level: unknown level {level!r}")
    logs.configure(level)
    return settings


def _fail(exc: PacsBridgeError) -> NoReturn:
    if isinstance(exc, InputRejected):
        for rejected in exc.rejected:
            err.print(f"rejected: {rejected}")
        err.print("Nothing of the job was done: fix or leave out the files above.")
    else:
        err.print(f"error: {exc}")
    raise typer.Exit(exc.exit_code)


def _dicom_only(dest: Destination) -> DicomDestination:
    if not isinstance(dest, DicomDestination):
        raise ConfigError(
            f"destination {dest.name!r} is of kind {dest.kind!r}, which this version "
            "cannot send to yet (only 'dicom')"
        )
    return dest


@app.command()
def echo(
    destination: Annotated[
        str, typer.Argument(help="Destination name in the config.", metavar="DEST")
    ],
) -> None:
    """Check a destination answers: DICOM C-ECHO (verification)."""
    try:
        settings = _settings()
        dest = _dicom_only(settings.destination(destination))
        seconds = dimse.echo(dest, settings.local)
    except PacsBridgeError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: no answer was awaited further.")
        raise typer.Exit(130) from None
    out.print(
        f"{dest.name} ({dest.ae_title}@{dest.host}:{dest.port}) answered C-ECHO "
        f"in {seconds * 1000:.0f} ms",
        highlight=False,
    )


# The CONTEXT options, shared by dicomize and send.
PatientId = Annotated[
    str, typer.Option("--patient-id", help="Patient ID (required).", metavar="ID")
]
PatientName = Annotated[
    str,
    typer.Option(
        "--patient-name", help="DICOM form: Family^Given^Middle.", metavar="NAME"
    ),
]
BirthDate = Annotated[
    str, typer.Option("--birth-date", help="Patient's birth date.", metavar="YYYYMMDD")
]
Sex = Annotated[
    str, typer.Option("--sex", help="Patient's sex: M, F or O.", metavar="M|F|O")
]
Accession = Annotated[
    str, typer.Option("--accession", help="Accession Number of the order.", metavar="N")
]
StudyUid = Annotated[
    str,
    typer.Option(
        "--study-uid",
        help="Add to this existing study (else a new one).",
        metavar="UID",
    ),
]
StudyDescription = Annotated[
    str, typer.Option("--study-description", help="Study Description.", metavar="TEXT")
]
SeriesDescription = Annotated[
    str,
    typer.Option("--series-description", help="Series Description.", metavar="TEXT"),
]
Modality = Annotated[
    str, typer.Option("--modality", help="Modality of the series.", metavar="CODE")
]
BodyPart = Annotated[
    str,
    typer.Option("--body-part", help="Body Part Examined, e.g. HAND.", metavar="CODE"),
]
Laterality = Annotated[
    str,
    typer.Option(
        "--laterality", help="Laterality of a paired body part.", metavar="R|L"
    ),
]
Operator = Annotated[
    str,
    typer.Option(
        "--operator", help="Operators' Name: who took the photos.", metavar="NAME"
    ),
]


def _context(
    patient_id: str,
    patient_name: str,
    birth_date: str,
    sex: str,
    accession: str,
    study_uid: str,
    study_description: str,
    series_description: str,
    modality: str,
    body_part: str,
    laterality: str,
    operator: str,
) -> CaptureContext:
    return CaptureContext(
        patient=Patient(patient_id, patient_name, birth_date, sex.upper()),
        accession_number=accession,
        study_instance_uid=study_uid,
        study_description=study_description,
        series_description=series_description,
        modality=modality.upper(),
        body_part=body_part.upper(),
        laterality=laterality.upper(),
        operator=operator,
    )


def _plan(files: list[Path], context: CaptureContext, settings: Settings) -> JobObjects:
    with _progress() as progress:
        task = progress.add_task("Checking", total=len(files))
        return JobObjects.plan(
            files, context, settings, on_checked=lambda _: progress.advance(task)
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@app.command()
def dicomize(
    files: Files,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for the DICOM files.", file_okay=False, metavar="DIR"
        ),
    ],
    patient_id: PatientId = "",
    patient_name: PatientName = "",
    birth_date: BirthDate = "",
    sex: Sex = "",
    accession: Accession = "",
    study_uid: StudyUid = "",
    study_description: StudyDescription = "",
    series_description: SeriesDescription = "",
    modality: Modality = "XC",
    body_part: BodyPart = "",
    laterality: Laterality = "",
    operator: Operator = "",
) -> None:
    """Write the DICOM objects for FILES into a folder; send nothing."""
    try:
        settings = _settings()
        context = _context(
            patient_id, patient_name, birth_date, sex, accession, study_uid,
            study_description, series_description, modality, body_part,
            laterality, operator,
        )  # fmt: skip
        job = _plan(files, context, settings)
        out_dir.mkdir(parents=True, exist_ok=True)
        for obj, built in job:
            built.write(out_dir / f"{obj.sop_instance_uid}.dcm")
    except PacsBridgeError as exc:
        _fail(exc)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.print(f"error: {out_dir}: cannot write ({reason})")
        raise typer.Exit(2) from None
    out.print(f"Wrote {len(job)} DICOM objects to {out_dir}", highlight=False)


@app.command()
def send(
    files: Files,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            help="Destination name; repeat for several. "
            "Default: every enabled destination.",
            metavar="DEST",
        ),
    ] = None,
    patient_id: PatientId = "",
    patient_name: PatientName = "",
    birth_date: BirthDate = "",
    sex: Sex = "",
    accession: Accession = "",
    study_uid: StudyUid = "",
    study_description: StudyDescription = "",
    series_description: SeriesDescription = "",
    modality: Modality = "XC",
    body_part: BodyPart = "",
    laterality: Laterality = "",
    operator: Operator = "",
) -> None:
    """Convert FILES and store them in the destinations now, as one job."""
    job_id = uuid.uuid4().hex[:12]
    try:
        settings = _settings()
        destinations = [_dicom_only(d) for d in settings.pick_destinations(to)]
        context = _context(
            patient_id, patient_name, birth_date, sex, accession, study_uid,
            study_description, series_description, modality, body_part,
            laterality, operator,
        )  # fmt: skip
        job = _plan(files, context, settings)
    except PacsBridgeError as exc:
        _fail(exc)
    logger.info("job %s: %d objects for %d destinations", job_id, len(job),
                len(destinations))  # fmt: skip
    stored_so_far: dict[str, int] = {}
    try:
        reports = [
            _store_with_progress(dest, settings, job, stored_so_far)
            for dest in destinations
        ]
    except KeyboardInterrupt:
        done = ", ".join(f"{n} on {name}" for name, n in stored_so_far.items())
        err.print(
            f"Interrupted: job {job_id} stopped. Confirmed stored: "
            f"{done or 'nothing'}; the object being sent may have been stored too, "
            "the rest was not sent.",
            highlight=False,
        )
        raise typer.Exit(130) from None
    failed = [r for r in reports if not r.delivered]
    for report in reports:
        _print_report(report)
    stored = sum(r.count("stored") + r.count("warning") for r in reports)
    out.print(
        f"Job {job_id}: {stored} of {len(job) * len(reports)} objects delivered to "
        f"{len(reports) - len(failed)} of {len(reports)} destinations.",
        highlight=False,
    )
    if failed:
        names = " ".join(f"--to {r.destination}" for r in failed)
        err.print(
            f"To finish the job, send the same files again with {names} "
            f"--study-uid {job.series.study_instance_uid}",
        )
        raise typer.Exit(1)


def _store_with_progress(
    dest: DicomDestination,
    settings: Settings,
    job: JobObjects,
    stored_so_far: dict[str, int],
) -> dimse.DeliveryReport:
    stored_so_far[dest.name] = 0

    def sent(_: object, outcome: dimse.ObjectOutcome) -> None:
        stored_so_far[dest.name] += outcome.delivered
        progress.advance(task)

    with _progress() as progress:
        task = progress.add_task(f"Sending to {dest.name}", total=len(job))
        return dimse.store(dest, settings.local, job, on_sent=sent)


def _print_report(report: dimse.DeliveryReport) -> None:
    for outcome in report.outcomes:
        if outcome.state in ("failed", "warning") and not outcome.association_lost:
            err.print(
                f"{report.destination}: {outcome.sop_instance_uid} {outcome.message}",
                highlight=False,
            )
    if report.error:
        err.print(f"error: {report.error}")
    out.print(
        f"{report.destination}: {report.count('stored')} stored, "
        f"{report.count('warning')} with warnings, {report.count('failed')} failed, "
        f"{report.count('not-sent')} not sent ({report.seconds:.1f} s)",
        highlight=False,
    )


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where the demo PACS keeps what it receives "
            "(default: local.data_dir).",
            metavar="DIR",
        ),
    ] = None,
) -> None:
    """Start a built-in demo PACS, send the bundled sample photos to it, show them."""
    from pacsbridge import demo as demo_module

    try:
        settings = _settings()
        folder = data_dir or settings.local.data_dir
        code = demo_module.run(settings, folder, out)
    except PacsBridgeError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the PacsBridge version."""
    out.print(__version__)


def main() -> None:
    """Entry point of the ``pacsbridge`` command."""
    app()
