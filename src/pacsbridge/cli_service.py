"""The service's commands: ``serve``, ``worker`` and ``jobs list|show|retry|cancel``.

They load the web stack and the job store only when they run, so ``send`` and
``dicomize`` start as fast as before.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pacsbridge.cli_app import fail, load_cli_settings, out
from pacsbridge.cli_context import printable
from pacsbridge.errors import ConfigError, PacsBridgeError

if TYPE_CHECKING:
    from pacsbridge.jobs.store import JobStore


def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on (default: server.host).", metavar="H"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port to listen on (default: server.port).",
            min=1,
            max=65535,
            metavar="P",
        ),
    ] = None,
) -> None:
    """Run the REST API and the workers until Ctrl-C or SIGTERM."""
    from pacsbridge import service  # the web stack loads for these commands only

    try:
        settings = load_cli_settings()
        host, port = host or settings.server.host, port or settings.server.port
        service.run_service(settings, host, port, announce=out.print)
    except PacsBridgeError as exc:
        fail(exc)


def worker() -> None:
    """Run the workers only (jobs.workers, at least one): for scale-out nodes."""
    from pacsbridge import service

    try:
        service.run_workers(load_cli_settings(), announce=out.print)
    except PacsBridgeError as exc:
        fail(exc)


jobs_app = typer.Typer(
    help="The jobs of the service's store: list, show, retry, cancel.",
    no_args_is_help=True,
)
JobId = Annotated[str, typer.Argument(help="The job's id.", metavar="ID")]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON, as the REST API answers.")
]
_JOB_STATES = ("queued", "running", "delivered", "partial", "failed", "cancelled")


@jobs_app.command("list")
def jobs_list(
    state: Annotated[
        str | None,
        typer.Option("--state", help=", ".join(_JOB_STATES) + ".", metavar="S"),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many.", min=1, metavar="N")
    ] = 50,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    from pacsbridge.jobs.store import job_view

    try:
        if state is not None and state not in _JOB_STATES:
            raise ConfigError(f"--state is one of {', '.join(_JOB_STATES)}")
        store = _job_store()
        views = [job_view(job) for job in store.jobs(state, limit=limit)]
    except PacsBridgeError as exc:
        fail(exc)
    if as_json:
        _print_json(views)
    else:
        out.print(_jobs_table(views))


@jobs_app.command("show")
def jobs_show(job_id: JobId, as_json: AsJson = False) -> None:
    """Show a job: each destination's delivery and each object's state."""
    from pacsbridge.jobs.store import job_view

    try:
        view = job_view(_job_store().job(job_id))
    except PacsBridgeError as exc:
        fail(exc)
    if as_json:
        _print_json(view)
        return
    out.print(f"Job {view['id']}: {view['state']}")
    out.print(f"Submitted {view['created_at']} by {printable(view['submitted_by'])}")
    for d in view["deliveries"]:
        error = f": {d['error']}" if d["error"] else ""
        line = f"  to {d['destination']}: {d['state']}, {d['attempts']} attempts"
        out.print(printable(line + error))
    for number, item in enumerate(view["items"], start=1):
        error = f": {item['error']}" if item["error"] else ""
        line = f"  {number}. {item['filename']} ({item['sop_instance_uid']})"
        out.print(printable(f"{line} {item['state']}{error}"))


@jobs_app.command("retry")
def jobs_retry(job_id: JobId) -> None:
    """Queue a job's failed and cancelled deliveries again, attempts from zero."""
    try:
        changed = _job_store().retry(job_id, _operator())
    except PacsBridgeError as exc:
        fail(exc)
    if changed:
        out.print(f"Job {job_id}: {changed} deliveries queued again.")
    else:
        out.print(f"Job {job_id}: no failed or cancelled delivery to retry.")


@jobs_app.command("cancel")
def jobs_cancel(job_id: JobId) -> None:
    """Stop a job's deliveries not yet done (a running one after its object)."""
    try:
        changed = _job_store().cancel(job_id, _operator())
    except PacsBridgeError as exc:
        fail(exc)
    if changed:
        out.print(f"Job {job_id}: {changed} deliveries cancelled.")
    else:
        out.print(f"Job {job_id}: no delivery left to cancel.")


def _job_store() -> JobStore:
    from pacsbridge.service import open_store

    return open_store(load_cli_settings())


def _jobs_table(views: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(views)} jobs", title_justify="left")
    for header in ("ID", "Created", "State", "Objects", "Deliveries", "By"):
        table.add_column(header, overflow="fold")
    for view in views:
        deliveries = ", ".join(
            f"{d['destination']}: {d['state']}" for d in view["deliveries"]
        )
        created = view["created_at"][:19].replace("T", " ")
        cells = (view["id"], created, view["state"], str(len(view["items"])),
                 deliveries, view["submitted_by"])  # fmt: skip
        table.add_row(*(Text(printable(cell)) for cell in cells))
    return table


def _print_json(value: object) -> None:
    utf8 = (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"
    out.print(json.dumps(value, ensure_ascii=not utf8, indent=2))


def _operator() -> str:
    # The audit's actor on the command line: the account that ran the command.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


user_app = typer.Typer(help="People who sign in to the page.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user name.", metavar="NAME")],
    role: Annotated[
        str, typer.Option("--role", help="clinician or admin.", metavar="ROLE")
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input.",
        ),
    ] = False,
) -> None:
    """Create a user; the password is stored only as an Argon2 hash."""
    from pacsbridge.jobs.users import add_user

    try:
        if not password_stdin:
            raise ConfigError(
                "give the password on standard input with --password-stdin "
                "(it never goes on the command line, where others can read it)"
            )
        password = sys.stdin.readline().rstrip("\r\n")
        add_user(_job_store(), name, role, password)
    except PacsBridgeError as exc:
        fail(exc)
    out.print(f"User {name} added as {role}.")


def register(app: typer.Typer) -> None:
    """Add the service's commands to ``app``, after the job's own."""
    app.command()(serve)
    app.command()(worker)
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(user_app, name="user")
