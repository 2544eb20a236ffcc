"""Logging for every entry point: one format, and no patient data from libraries.

The CLI calls :func:`configure` now; the service and workers will call it too, so
the rules that keep identifiers out of the logs live in one place.
"""

from __future__ import annotations

import logging
import sys
import warnings

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure(level: str) -> None:
    """Send log lines at ``level`` and above to stderr."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # Pillow's debug lines quote EXIF values (a photo's description can name the
    # patient); pynetdicom's errors repeat what our own messages say better.
    logging.getLogger("PIL").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("pynetdicom").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    )
    # pydicom warns about odd values in what peers send by quoting them; our
    # own code says what matters (answers.decode_answer counts its warnings).
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?$")
