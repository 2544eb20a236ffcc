"""The command line: ``pacsbridge [--config FILE] [--log-level LEVEL] COMMAND``.

The job's own commands live here (echo, lookup, dicomize, send, demo, version);
the service's in cli_service.py; what all share in cli_app.py.

Exit codes: 0 done; 1 delivery failed; 2 usage or configuration error; 3 input
rejected.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from pacsbridge import __version__, cli_service, lookup
from pacsbridge.cli_app import app, err, fail, load_cli_settings, out
from pacsbridge.cli_context import (
    Accession,
    BirthDate,
    BodyPart,
    FromStudy,
    FromWorklist,
    Laterality,
    Modality,
    Operator,
    PatientId,
    PatientName,
    SeriesDescription,
    Sex,
    StudyDescription,
    StudyUid,
    job_context,
    printable,
)
from pacsbridge.config import Destination, DicomDestination, Settings
from pacsbridge.context import CaptureContext
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.errors import ConfigError, PacsBridgeError
from pacsbridge.lookup.apply import TypedContext

logger = logging.getLogger(__name__)

Files = Annotated[
    list[Path],
    typer.Argument(
        help="Photos (JPEG, PNG, HEIC, AVIF, TIFF, BMP, WebP, GIF) and videos "
        "(MP4, MOV, M4V, MKV, WebM, AVI, MPEG; H.264, HEVC and others).",
        readable=False,  # an unreadable file is a rejected input (exit 3), ours
        metavar="FILE",
    ),
]


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
        settings = load_cli_settings()
        dest = _dicom_only(settings.destination(destination))
        seconds = dimse.echo(dest, settings.local)
    except PacsBridgeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: no answer was awaited further.")
        raise typer.Exit(130) from None
    out.print(
        f"{dest.name} ({dest.ae_title}@{dest.host}:{dest.port}) answered C-ECHO "
        f"in {seconds * 1000:.0f} ms",
        highlight=False,
    )


@app.command("lookup")
def lookup_command(
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="worklist, study or dicomweb (default: lookup.provider).",
            metavar="worklist|study|dicomweb",
        ),
    ] = None,
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Patient name; * and ? are wildcards.", metavar="PATTERN"
        ),
    ] = "",
    patient_id: Annotated[
        str, typer.Option("--patient-id", help="Exact Patient ID.", metavar="ID")
    ] = "",
    accession: Annotated[
        str,
        typer.Option("--accession", help="Exact Accession Number.", metavar="N"),
    ] = "",
    modality: Annotated[
        str, typer.Option("--modality", help="Modality, e.g. XC.", metavar="M")
    ] = "",
    date: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="A day or a range (default: the last lookup.date_range_days days).",
            metavar="YYYYMMDD[-YYYYMMDD]|today",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
) -> None:
    """Find patients and orders: worklist entries or existing studies."""
    try:
        settings = load_cli_settings()
        chosen = _provider(provider)
        query = lookup.typed_query(
            name, patient_id, accession, modality, date,
            settings.lookup.date_range_days,
        )  # fmt: skip
        result = lookup.search(settings, query, chosen)
    except PacsBridgeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: the search was stopped.")
        raise typer.Exit(130) from None
    if as_json:
        rows = [lookup.order_json(order) for order in result.orders]
        utf8 = (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"
        out.print(json.dumps(rows, ensure_ascii=not utf8, indent=2))
    else:
        out.print(_orders_table(result))
    if result.unreadable:
        err.print(
            f"{result.unreadable} answers from the provider could not be read and "
            "are not shown."
        )
    if result.truncated:
        err.print(
            f"More than {settings.lookup.max_results} matches: only the first "
            f"{settings.lookup.max_results} are shown. Narrow the search."
        )


def _provider(text: str | None) -> lookup.Provider | None:
    if text is None:
        return None
    if text not in ("worklist", "study", "dicomweb"):
        raise ConfigError("--provider is worklist, study or dicomweb")
    return text  # type: ignore[return-value]


def _orders_table(result: lookup.SearchResult) -> Table:
    when = "Scheduled" if result.provider == "worklist" else "Study date"
    table = Table(
        title=f"{len(result.orders)} {result.provider} entries", title_justify="left"
    )
    headers = ("Patient name", "Patient ID", "Born", "Sex", "Accession", "Modality",
               when, "Description")  # fmt: skip
    for header in headers:
        # A name cut short could be taken for another: fold, never truncate.
        table.add_column(header, overflow="fold")
    for order in result.orders:
        row = lookup.order_json(order)
        cells = (
            row["patient_name"], row["patient_id"], row["birth_date"], row["sex"],
            row["accession_number"], row["modality"],
            f"{row['scheduled_date']} {row['scheduled_time'][:4]}".strip(),
            row["description"],
        )  # fmt: skip
        # Text, not markup; control characters from a peer are not printed raw.
        table.add_row(*(Text(printable(cell)) for cell in cells))
    return table


def _plan(files: list[Path], context: CaptureContext, settings: Settings) -> JobObjects:
    with _progress() as progress:
        task = progress.add_task("Checking", total=len(files))
        job = JobObjects.plan(
            files, context, settings, on_checked=lambda _: progress.advance(task)
        )
    for obj in job.planned:
        for note in obj.notes:
            err.print(f"{printable(str(obj.path))}: {note}", highlight=False)
    return job


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
    modality: Modality = "",
    body_part: BodyPart = "",
    laterality: Laterality = "",
    operator: Operator = "",
    from_worklist: FromWorklist = None,
    from_study: FromStudy = None,
) -> None:
    """Write the DICOM objects for FILES into a folder; send nothing."""
    try:
        settings = load_cli_settings()
        context = job_context(
            settings,
            TypedContext(
                patient_id, patient_name, birth_date, sex.upper(), accession,
                study_uid, study_description, series_description, modality.upper(),
                body_part.upper(), laterality.upper(), operator,
            ),
            from_worklist, from_study, err.print,
        )  # fmt: skip
        with _plan(files, context, settings) as job:
            out_dir.mkdir(parents=True, exist_ok=True)
            for obj, built in job:
                built.write(out_dir / f"{obj.sop_instance_uid}.dcm")
    except PacsBridgeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: each file written is whole; the rest were not written.")
        raise typer.Exit(130) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.print(f"error: {out_dir}: cannot write ({reason})")
        raise typer.Exit(2) from None
    objects = "object" if len(job) == 1 else "objects"
    out.print(f"Wrote {len(job)} DICOM {objects} to {out_dir}", highlight=False)


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
    modality: Modality = "",
    body_part: BodyPart = "",
    laterality: Laterality = "",
    operator: Operator = "",
    from_worklist: FromWorklist = None,
    from_study: FromStudy = None,
) -> None:
    """Convert FILES and store them in the destinations now, as one job."""
    job_id = uuid.uuid4().hex[:12]
    try:
        settings = load_cli_settings()
        destinations = [_dicom_only(d) for d in settings.pick_destinations(to)]
        context = job_context(
            settings,
            TypedContext(
                patient_id, patient_name, birth_date, sex.upper(), accession,
                study_uid, study_description, series_description, modality.upper(),
                body_part.upper(), laterality.upper(), operator,
            ),
            from_worklist, from_study, err.print,
        )  # fmt: skip
        job = _plan(files, context, settings)
    except PacsBridgeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted before sending: nothing was sent.")
        raise typer.Exit(130) from None
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
    finally:
        job.close()
    failed = [r for r in reports if not r.delivered]
    for report in reports:
        _print_report(report, job)
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


def _print_report(report: dimse.DeliveryReport, job: JobObjects) -> None:
    inputs = {obj.sop_instance_uid: obj.path for obj in job.planned}
    for outcome in report.outcomes:
        if outcome.state in ("failed", "warning") and not outcome.association_lost:
            source = printable(str(inputs.get(outcome.sop_instance_uid, "")))
            err.print(
                f"{report.destination}: {source} ({outcome.sop_instance_uid}) "
                f"{outcome.message}",
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
        settings = load_cli_settings()
        folder = data_dir or settings.local.data_dir
        code = demo_module.run(settings, folder, out)
    except PacsBridgeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: the demo stopped.")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the PacsBridge version."""
    out.print(__version__)


cli_service.register(app)


def main() -> None:
    """Entry point of the ``pacsbridge`` command."""
    # A terminal or pipe that cannot show a name's characters gets escapes for
    # them, not a crash after the work is done (JSON output escapes losslessly).
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    # A stop from systemd, docker or timeout unwinds like Ctrl-C does: the
    # association is aborted and the job's work folder removed on the way out.
    signal.signal(signal.SIGTERM, _terminated)
    app()


def _terminated(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)
