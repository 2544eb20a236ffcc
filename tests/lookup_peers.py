"""Real query peers for the lookup tests: DCMTK's wlmscpfs and dcmqrscp.

Like the peers of :mod:`tests.peers`, each runs as a child process in a folder
of its own, on a port picked free just before it starts, and counts as started
once it answers a C-ECHO (PS3.7 9.1.5). Orthanc, which answers both worklist
and Study Root C-FIND, is :class:`tests.peers.Orthanc`.

Nothing here needs pytest. Errors::

    PeerError      a peer did not start, stopped early or answered with an error
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.peers import (
    HOST,
    PeerError,
    _accepts_tcp,
    _Peer,
    c_echo,
    find_tool,
    free_port,
)
from tests.worklists import install_for_wlmscpfs

_STORE_TIMEOUT = 120


def _tool(name: str) -> str:
    tool = find_tool(name)
    if tool is None:
        raise PeerError(f"{name} is not installed (Debian package dcmtk).")
    return str(tool)


class WorklistSCP(_Peer):
    """DCMTK's wlmscpfs serving ``*.wl`` files as a Modality Worklist SCP.

    The files are copied to ``data_files_path/<ae_title>/`` with the
    ``lockfile`` wlmscpfs wants there; wlmscpfs reads them anew for every
    query, so :meth:`set_worklist_files` works while it runs.
    ``keep_charset=True`` is ``-csk``: answers carry each file's Specific
    Character Set. Without it wlmscpfs drops the attribute from its answers
    (its default ``-cs0``) and non-ASCII values arrive undeclared.
    """

    label = "wlmscpfs"

    def __init__(
        self,
        worklist_files: Iterable[Path] = (),
        *,
        ae_title: str = "WLMSCP",
        keep_charset: bool = True,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        super().__init__(
            workdir=workdir,
            startup_timeout=startup_timeout,
            fixed_ports=port is not None,
        )
        self.ae_title = ae_title
        self.keep_charset = keep_charset
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.data_files_path = self.workdir / "worklists"
        self._worklist_files = list(worklist_files)

    @property
    def database(self) -> Path:
        """The folder wlmscpfs searches for the called AE title ``ae_title``."""
        return self.data_files_path / self.ae_title

    def set_worklist_files(self, files: Iterable[Path]) -> Path:
        """Serve exactly ``files`` from now on; return the folder they are in."""
        self._worklist_files = list(files)
        return install_for_wlmscpfs(
            self._worklist_files, self.data_files_path, self.ae_title
        )

    def echo(self) -> bool:
        """Return True when wlmscpfs answers a C-ECHO."""
        return c_echo(self.port, self.ae_title)

    def _prepare(self) -> list[str]:
        command = [_tool("wlmscpfs")]
        self.set_worklist_files(self._worklist_files)

        # -dhl: no reverse DNS lookup of the caller, which stalls without DNS.
        command += ["-dhl", "-dfp", str(self.data_files_path)]
        command += ["-csk" if self.keep_charset else "-cs0"]
        return [*command, *self.extra_args, str(self.port)]

    def _is_ready(self) -> bool:
        # The silent TCP probe first, as for storescp.
        return _accepts_tcp(self.port) and self.echo()

    def _choose_new_ports(self) -> None:
        self.port = free_port()


class QueryRetrieveSCP(_Peer):
    """DCMTK's dcmqrscp: a Study Root (and Patient Root) C-FIND SCP and archive.

    One AE title, ``ae_title``, with its storage area in ``storage_dir``; any
    calling AE title may store into it and query it. ``charset_config``, when
    given, is written as the configuration's global ``SpecificCharacterSet``
    line (for instance ``'"ISO_IR 192", override'``); without it dcmqrscp
    converts each answer to the query's Specific Character Set, and sends it
    unconverted where iconv cannot (ISO 2022 IR 87 among others).
    """

    label = "dcmqrscp"

    def __init__(
        self,
        *,
        ae_title: str = "DCMQR",
        port: int | None = None,
        charset_config: str | None = None,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        super().__init__(
            workdir=workdir,
            startup_timeout=startup_timeout,
            fixed_ports=port is not None,
        )
        self.ae_title = ae_title
        self.port = port or free_port()
        self.charset_config = charset_config
        self.extra_args = list(extra_args)
        self.storage_dir = self.workdir / "storage"
        self.config_path = self.workdir / "dcmqrscp.cfg"

    def echo(self) -> bool:
        """Return True when dcmqrscp answers a C-ECHO."""
        return c_echo(self.port, self.ae_title)

    def store(self, files: Iterable[Path], *, calling_ae: str = "STORESCU") -> None:
        """Store DICOM files into the archive with DCMTK's storescu.

        Raise PeerError when storescu fails or dcmqrscp refuses an object.
        """
        paths = [str(path) for path in files]
        if not paths:
            return
        # -R: propose only the SOP classes of the files; storescu then fails
        # (exit code) when any C-STORE is not answered with Success.
        command = [_tool("storescu"), "-R", "-aet", calling_ae, "-aec"]
        command += [self.ae_title, HOST, str(self.port), *paths]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_STORE_TIMEOUT,
        )
        if result.returncode != 0 or "E: " in result.stderr:
            raise PeerError(
                f"storescu could not store {len(paths)} files in dcmqrscp on "
                f"port {self.port} (exit code {result.returncode}):\n"
                f"{result.stderr.strip()}"
            )

    def files(self) -> list[Path]:
        """Return the files in the storage area, sorted by name."""
        return sorted(
            path
            for path in self.storage_dir.iterdir()
            if path.is_file() and path.name != "index.dat"
        )

    def _config(self) -> str:
        # An AETable row: AE title, storage area, access, (max studies, max
        # bytes per study), peers allowed. dcmqrscp caps max studies at 500.
        lines = [
            f"NetworkTCPPort  = {self.port}",
            "MaxPDUSize      = 16384",
            "MaxAssociations = 16",
        ]
        if self.charset_config is not None:
            lines.append(f"SpecificCharacterSet = {self.charset_config}")
        lines += [
            "HostTable BEGIN",
            "HostTable END",
            "VendorTable BEGIN",
            "VendorTable END",
            "AETable BEGIN",
            f"{self.ae_title} {self.storage_dir} RW (500, 1024mb) ANY",
            "AETable END",
        ]
        return "\n".join(lines) + "\n"

    def _prepare(self) -> list[str]:
        command = [_tool("dcmqrscp")]
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        return [*command, "-c", str(self.config_path), *self.extra_args]

    def _is_ready(self) -> bool:
        return _accepts_tcp(self.port) and self.echo()

    def _choose_new_ports(self) -> None:
        self.port = free_port()
