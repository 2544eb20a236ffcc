"""A throwaway PostgreSQL cluster for the scale-out tests.

initdb and postgres refuse to run as root, so when the tests run as root the
cluster belongs to the ``postgres`` user Debian's package creates, in a folder
of its own under /tmp (pytest's temp folders are closed to other users). It
listens on 127.0.0.1 and a free port and trusts local connections: it lives only
as long as the test that needs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.peers import PeerError, free_port, require_or_skip

_USER = "pacsbridge"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresCluster:
    """initdb, start, create a database; stop and remove on exit."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pacsbridge-pg-"))
        self.port = free_port()
        self.data = self.folder / "cluster"
        self._as_user: list[str] = []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{_USER}@127.0.0.1:{self.port}/pacsbridge"

    def start(self) -> Self:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            require_or_skip(["initdb", "pg_ctl"])
            raise PeerError("PostgreSQL's initdb and pg_ctl are missing")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(initdb, "-D", str(self.data), "-U", _USER, "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off"
        )
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-w",
                  "-l", str(self.folder / "server.log"), "start")  # fmt: skip
        self._create_database()
        return self

    def _create_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER,
                 "-d", "postgres", "-c", "CREATE DATABASE pacsbridge"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PeerError(f"PostgreSQL did not start: {result.stderr}")
            time.sleep(0.2)

    def stop(self) -> None:
        pg_ctl = _bin("pg_ctl")
        if pg_ctl is not None and self.data.exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "stop",
                      check=False)  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str, check: bool = True) -> None:
        result = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise PeerError(f"{Path(command[0]).name} failed: {result.stderr}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
