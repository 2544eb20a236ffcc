"""Real DICOM peers for the tests: Orthanc and DCMTK's storescp on 127.0.0.1.

Each peer runs as a child process in a folder of its own, on ports picked free
just before it starts, and counts as started only once it accepts connections
and answers a C-ECHO (PS3.7 9.1.5). The peers listen on all interfaces; we only
ever connect to 127.0.0.1. The system Orthanc service that Debian installs sits
on 4242/8042, which is why no port here is fixed.

Nothing here needs pytest except :func:`require_or_skip`, so scripts and
benchmarks can start peers too. Errors::

    PeerError      a peer did not start, stopped early or answered with an error
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from pynetdicom import AE

HOST = "127.0.0.1"
PROBE_AE_TITLE = "PACSBRIDGE"
REQUIRE_PEERS_ENV = "PACSBRIDGE_REQUIRE_PEERS"
VERIFICATION = "1.2.840.10008.1.1"  # Verification SOP Class, PS3.4 A.4
ORTHANC_PLUGINS = (
    Path("/usr/share/orthanc/plugins/libModalityWorklists.so"),
    Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
)

# Debian puts Orthanc in /usr/sbin, which is not on an ordinary user's PATH.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_POLL_SECONDS = 0.05
_PROBE_TIMEOUT = 5.0
_START_ATTEMPTS = 3
_STDERR_TAIL_LINES = 20
# A proxy from the environment must never see requests meant for 127.0.0.1.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PeerError(RuntimeError):
    """A peer did not start, stopped early or answered with an error."""


def free_port() -> int:
    """Return a TCP port that nothing listens on at the moment of asking.

    Another process may take it before the peer binds it; ``start()`` then
    tries again on new ports.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def find_tool(name: str) -> Path | None:
    """Return the path of the peer binary ``name``, or None when it is missing."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    found = shutil.which(name, path=search_path)
    return Path(found) if found else None


def missing_tools(tool_names: Iterable[str]) -> list[str]:
    """Return those of ``tool_names`` that are not installed, in order."""
    return [name for name in tool_names if find_tool(name) is None]


def require_or_skip(tool_names: Iterable[str]) -> None:
    """Skip the calling test when a peer binary is missing.

    With ``PACSBRIDGE_REQUIRE_PEERS=1`` (as CI sets it) the test fails instead,
    so a broken install cannot pass as a run of skipped tests.
    """
    import pytest  # here, not at the top, so the module stays pytest-free

    missing = missing_tools(tool_names)
    if not missing:
        return

    reason = f"peer binaries not installed: {', '.join(missing)}"
    if os.environ.get(REQUIRE_PEERS_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_PEERS_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def c_echo(port: int, called_ae_title: str, *, timeout: float = _PROBE_TIMEOUT) -> bool:
    """Return True when the SCP on ``port`` answers a C-ECHO with Success."""
    ae = AE(ae_title=PROBE_AE_TITLE)
    ae.add_requested_context(VERIFICATION)
    ae.connection_timeout = timeout
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout

    assoc = ae.associate(HOST, port, ae_title=called_ae_title)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    return bool(status) and int(status.Status) == 0x0000


def dciodvfy_available() -> bool:
    """Return True when dicom3tools' dciodvfy is installed."""
    return find_tool("dciodvfy") is not None


def dciodvfy(path: Path | str) -> list[str]:
    """Return the error lines dciodvfy prints for the file at ``path``.

    dciodvfy writes everything to stderr: the name of the IOD it checked
    against (``SCImage``), then one finding a line, starting ``Error - ``,
    ``Warning - `` or, when it cannot open the file, ``Abort - ``. Findings
    about one element while parsing start with its tag instead, as in
    ``(0x0010,0x0010) ... - Error - ...``. Its exit code is 1 when it found an
    error. Errors and aborts are returned, warnings are not.
    """
    tool = find_tool("dciodvfy")
    if tool is None:
        raise PeerError("dciodvfy is not installed (Debian package dicom3tools).")

    result = subprocess.run(
        [str(tool), str(path)],
        capture_output=True,
        text=True,
        errors="replace",  # values from the file are echoed in any encoding
        timeout=60,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return [
        line
        for line in lines
        if line.startswith(("Error", "Abort")) or " - Error - " in line
    ]


class _Peer:
    """A peer binary run as a child process in a folder of its own."""

    label = "peer"

    def __init__(
        self, *, workdir: Path | None, startup_timeout: float, fixed_ports: bool
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"pb-{self.label}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self._fixed_ports = fixed_ports
        self._process: subprocess.Popen[bytes] | None = None

    # Hooks for the concrete peers.

    def _prepare(self) -> list[str]:
        """Write what the peer needs to its folder; return its command line."""
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _choose_new_ports(self) -> None:
        raise NotImplementedError

    # Life cycle.

    @property
    def pid(self) -> int:
        """Process ID of the running peer."""
        if self._process is None:
            raise PeerError(f"{self.label} is not running.")
        return self._process.pid

    @property
    def stderr_path(self) -> Path:
        """File that collects the peer's stderr (and its log)."""
        return self.workdir / "stderr.log"

    def stderr_tail(self, lines: int = _STDERR_TAIL_LINES) -> str:
        """Return the last ``lines`` lines the peer wrote to stderr."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> Self:
        """Start the peer and wait until it answers; raise PeerError if it won't."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._spawn(self._prepare())
            try:
                self._wait_until_ready()
                return self
            except PeerError:
                port_taken = "already in use" in self.stderr_tail()
                if self._fixed_ports or not port_taken or attempt == _START_ATTEMPTS:
                    self.stop()
                    raise
                self._terminate()
            # Someone took a port between free_port() and the peer's bind().
            self._choose_new_ports()
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the peer and remove its folder if the peer created it."""
        self._terminate(timeout)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, command: list[str]) -> None:
        # Files rather than pipes: nobody reads a pipe while the peer runs, and
        # a full pipe would block it.
        with (
            open(self.workdir / "stdout.log", "wb") as stdout,
            open(self.stderr_path, "wb") as stderr,
        ):
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise PeerError(
                    f"{self.label} exited with code {code} before answering; "
                    f"its stderr ends with:\n{self.stderr_tail()}"
                )
            if self._is_ready():
                return
            time.sleep(_POLL_SECONDS)
        raise PeerError(
            f"{self.label} did not answer within {self.startup_timeout:g} s; "
            f"its stderr ends with:\n{self.stderr_tail()}"
        )

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


class StoreSCP(_Peer):
    """DCMTK's storescp, writing every object it receives as ``*.dcm``.

    ``accept="all"`` is storescp's ``+xa`` (every transfer syntax it knows,
    HEVC included); ``accept="implicit"`` is ``+xi`` (Implicit VR Little
    Endian only). ``max_pdu`` is ``--max-pdu`` (4096..131072; storescp's
    default is 16384). ``tcp_nodelay=True`` sets ``TCP_NODELAY=1`` in its
    environment, which switches Nagle's algorithm off on its side.
    """

    label = "storescp"

    def __init__(
        self,
        *,
        accept: Literal["all", "implicit"] = "all",
        ae_title: str = "STORESCP",
        port: int | None = None,
        max_pdu: int | None = None,
        tcp_nodelay: bool = False,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        super().__init__(
            workdir=workdir,
            startup_timeout=startup_timeout,
            fixed_ports=port is not None,
        )
        self.accept = accept
        self.ae_title = ae_title
        self.port = port or free_port()
        self.max_pdu = max_pdu
        self.tcp_nodelay = tcp_nodelay
        self.extra_args = list(extra_args)
        self.output_dir = self.workdir / "received"

    def files(self) -> list[Path]:
        """Return the received files, sorted by name.

        storescp writes a file before it sends the C-STORE response, so every
        object whose store was answered is complete on disk.
        """
        return sorted(self.output_dir.glob("*.dcm"))

    def echo(self) -> bool:
        """Return True when storescp answers a C-ECHO."""
        return c_echo(self.port, self.ae_title)

    def _prepare(self) -> list[str]:
        tool = find_tool("storescp")
        if tool is None:
            raise PeerError("storescp is not installed (Debian package dcmtk).")
        self.output_dir.mkdir(parents=True, exist_ok=True)

        command = [str(tool), "+xa" if self.accept == "all" else "+xi"]
        # -dhl: no reverse DNS lookup of the caller, which stalls without DNS.
        command += ["-dhl", "-aet", self.ae_title, "-od", str(self.output_dir)]
        command += ["-fe", ".dcm"]
        if self.max_pdu is not None:
            command += ["--max-pdu", str(self.max_pdu)]
        return [*command, *self.extra_args, str(self.port)]

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.pop("TCP_NODELAY", None)
        if self.tcp_nodelay:
            env["TCP_NODELAY"] = "1"
        return env

    def _is_ready(self) -> bool:
        # The silent TCP probe first: a refused association makes pynetdicom
        # log an error on every poll.
        return _accepts_tcp(self.port) and self.echo()

    def _choose_new_ports(self) -> None:
        self.port = free_port()


class Orthanc(_Peer):
    """An Orthanc of our own with its storage, index and worklists in ``workdir``.

    Worklist files (``*.wl``) go in ``worklist_dir``. ``config`` entries are
    merged over the defaults below, so a test can add ``DicomModalities`` or
    shorten ``StableAge``. ``default_encoding`` is Orthanc's ``DefaultEncoding``
    (Orthanc's own default is ``"Latin1"``): every C-FIND answer, worklist or
    study, comes in that character set whatever the query asked for, and
    characters it cannot hold are dropped. ``"Utf8"`` keeps every name.
    """

    label = "Orthanc"

    def __init__(
        self,
        *,
        ae_title: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        config: Mapping[str, object] | None = None,
        default_encoding: str | None = None,
        workdir: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            workdir=workdir,
            startup_timeout=startup_timeout,
            fixed_ports=dicom_port is not None or http_port is not None,
        )
        self.ae_title = ae_title
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.extra_config = dict(config or {})
        self.default_encoding = default_encoding
        self.storage_dir = self.workdir / "storage"
        self.index_dir = self.workdir / "index"
        self.worklist_dir = self.workdir / "worklists"
        self.config_path = self.workdir / "orthanc.json"

    @property
    def http_url(self) -> str:
        """Base URL of the REST API, without a trailing slash."""
        return f"http://{HOST}:{self.http_port}"

    def echo(self) -> bool:
        """Return True when Orthanc answers a C-ECHO."""
        return c_echo(self.dicom_port, self.ae_title)

    # REST API

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> bytes:
        """Send one REST request and return the body of a 2xx answer."""
        request = urllib.request.Request(self.http_url + path, data=body, method=method)
        if content_type is not None:
            request.add_header("Content-Type", content_type)

        try:
            with _HTTP.open(request, timeout=30) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            # An unclosed HTTPError leaks its socket: a ResourceWarning, which
            # the test suite turns into an error.
            exc.close()
            raise PeerError(
                f"Orthanc on port {self.http_port} answered {exc.code} "
                f"to {method} {path}."
            ) from exc
        except urllib.error.URLError as exc:
            raise PeerError(
                f"Orthanc on port {self.http_port} did not answer {method} {path}."
            ) from exc

    def get_json(self, path: str) -> Any:
        """GET ``path`` and decode the JSON answer."""
        return json.loads(self.request("GET", path))

    def instances(self) -> list[str]:
        """Return the Orthanc IDs of all stored instances."""
        return self._id_list("/instances")

    def patients(self) -> list[str]:
        """Return the Orthanc IDs of all stored patients."""
        return self._id_list("/patients")

    def studies(self) -> list[str]:
        """Return the Orthanc IDs of all stored studies."""
        return self._id_list("/studies")

    def instance_file(self, instance_id: str) -> bytes:
        """Return the stored DICOM file of one instance, as Orthanc keeps it."""
        return self.request("GET", f"/instances/{instance_id}/file")

    def upload(self, data: bytes) -> str:
        """Store a DICOM file through REST and return its instance ID."""
        answer = json.loads(
            self.request("POST", "/instances", data, "application/dicom")
        )
        return str(answer["ID"])

    def plugins(self) -> list[str]:
        """Return the names of the loaded plugins (``dicom-web``, ``worklists``)."""
        return self._id_list("/plugins")

    def clear(self) -> None:
        """Empty the archive: patients, worklist files and modalities added by REST.

        Lets one Orthanc serve a whole session; a test that needs it empty
        calls this first.
        """
        for patient_id in self.patients():
            self.request("DELETE", f"/patients/{patient_id}")
        for name in self._id_list("/modalities"):
            self.request("DELETE", f"/modalities/{name}")
        for path in self.worklist_dir.glob("*.wl"):
            path.unlink()

    def _id_list(self, path: str) -> list[str]:
        answer = self.get_json(path)
        if not isinstance(answer, list):
            raise PeerError(f"Orthanc answered GET {path} with a non-list.")
        return [str(item) for item in answer]

    # Process

    def _config(self) -> dict[str, object]:
        plugins = [str(path) for path in ORTHANC_PLUGINS if path.exists()]
        config: dict[str, object] = {
            "Name": f"pacsbridge-tests-{self.http_port}",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            "DicomAet": self.ae_title,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "StrictAetComparison": False,
            # Every transfer syntax, video and HEVC included (PS3.5 10).
            "AcceptedTransferSyntaxes": ["1.2.840.10008.1.*"],
            # Unknown calling AE titles may query (C-ECHO is always allowed).
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowFindWorklist": True,
            "Plugins": plugins,
            "Worklists": {"Enable": True, "Database": str(self.worklist_dir)},
            "DicomWeb": {"Enable": True},
        }
        if self.default_encoding is not None:
            config["DefaultEncoding"] = self.default_encoding
        config.update(self.extra_config)
        return config

    def _prepare(self) -> list[str]:
        tool = find_tool("Orthanc")
        if tool is None:
            raise PeerError("Orthanc is not installed (Debian package orthanc).")
        for folder in (self.storage_dir, self.index_dir, self.worklist_dir):
            folder.mkdir(parents=True, exist_ok=True)

        self.config_path.write_text(json.dumps(self._config(), indent=2))
        # --no-jobs: never resume jobs left in the index by an earlier run.
        return [str(tool), "--no-jobs", str(self.config_path)]

    def _is_ready(self) -> bool:
        # Orthanc opens its DICOM port before its HTTP port; ask both anyway.
        try:
            self.request("GET", "/system")
        except PeerError:
            return False
        return self.echo()

    def _choose_new_ports(self) -> None:
        self.dicom_port = free_port()
        self.http_port = free_port()
