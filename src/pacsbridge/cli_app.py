"""What every command of ``pacsbridge`` shares: the app, its global options,
the consoles, the settings they load and the way they fail.

Exit codes: 0 done; 1 delivery failed; 2 usage or configuration error; 3 input
rejected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from pacsbridge import logs
from pacsbridge.config import Settings, load_settings
from pacsbridge.errors import ConfigError, InputRejected, PacsBridgeError

logger = logging.getLogger(__name__)
# Messages carry file names, AE titles and peers' comments: printed as they are,
# never read as Rich markup.
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

app = typer.Typer(
    name="pacsbridge",
    help=(
        "PacsBridge turns clinical photos and videos into DICOM objects for the right "
        "patient and stores them in your PACS.\n\n"
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


def load_cli_settings() -> Settings:
    settings = load_settings(_state.config)
    level = _state.log_level or settings.local.log_level
    if level not in logs.LEVELS:
        raise ConfigError(f"--log-level: unknown level {level!r}")
    logs.configure(level)
    return settings


def fail(exc: PacsBridgeError) -> NoReturn:
    if isinstance(exc, InputRejected):
        for rejected in exc.rejected:
            err.print(f"rejected: {rejected}")
        err.print("Nothing of the job was done: fix or leave out the files above.")
    else:
        err.print(f"error: {exc}")
    raise typer.Exit(exc.exit_code)
