"""The service: the REST API and the workers in one process, or workers alone.

``pacsbridge serve`` runs uvicorn in the main thread and ``jobs.workers`` worker
threads beside it; ``pacsbridge worker`` runs only the workers, for nodes that
share one PostgreSQL store. SIGTERM or SIGINT stops both: the API drains its
requests, each worker finishes the delivery it holds or, past the grace period,
abandons it; its lease then lets another worker take it over, resending at most
the object that was on the wire.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from pacsbridge.api import create_app
from pacsbridge.api.uploads import node_folder, remove_leftovers
from pacsbridge.config import Settings
from pacsbridge.errors import ConfigError
from pacsbridge.jobs import intake
from pacsbridge.jobs.store import JobStore
from pacsbridge.jobs.worker import Worker

logger = logging.getLogger(__name__)

# Requests in flight get this long to finish after a stop signal, and workers
# as long again; together they stay within the 30 s most supervisors allow.
_HTTP_GRACE_SECONDS = 15
_WORKER_GRACE_SECONDS = 10.0


def open_store(settings: Settings) -> JobStore:
    """The job store of ``[local]``: SQLite in the data folder by default."""
    return JobStore.open(settings.local.database_url, settings.local.data_dir)


def _open_for_work(settings: Settings) -> JobStore:
    # A node that starts working first removes the job folders a killed intake
    # left without a job.
    store = open_store(settings)
    orphans = intake.remove_orphans(store, settings.local.data_dir)
    if orphans:
        logger.warning("removed %d job folders no stored job owns", orphans)
    return store


def run_service(
    settings: Settings,
    host: str,
    port: int,
    announce: Callable[[str], None] = lambda _: None,
) -> None:
    """Serve the API on ``host:port`` with ``jobs.workers`` workers until stopped;
    ``announce`` hears where, once the port is taken."""
    tls = _tls_files(settings)
    store = _open_for_work(settings)
    listener = _listen(host, port)
    uploads_dir = node_folder(settings.local.data_dir, port)
    removed = remove_leftovers(uploads_dir)
    if removed:
        logger.warning("removed %d uploads a previous run left unfinished", removed)
    app = create_app(settings, store, uploads_dir=uploads_dir)
    config = uvicorn.Config(
        app,
        log_config=None,  # our logging (logs.configure), not uvicorn's own
        access_log=False,  # it would log query strings: lookups hold patient data
        server_header=False,
        timeout_graceful_shutdown=_HTTP_GRACE_SECONDS,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    stop = threading.Event()
    with (
        _stopped_by_signals(stop),
        _workers(store, settings, settings.jobs.workers, stop),
    ):
        scheme = "https" if tls else "http"
        announce(f"Serving on {scheme}://{host}:{port} with {settings.jobs.workers} "
                 "workers; stop with Ctrl-C or SIGTERM.")  # fmt: skip
        _Server(config, stop).run(sockets=[listener])
    logger.info("stopped")


def run_workers(
    settings: Settings, announce: Callable[[str], None] = lambda _: None
) -> None:
    """Run ``jobs.workers`` workers (at least one) until SIGTERM or SIGINT."""
    store = _open_for_work(settings)
    # jobs.workers = 0 keeps `serve` to the API alone; a worker node asked to
    # work still runs one.
    count = max(1, settings.jobs.workers)
    stop = threading.Event()
    with _stopped_by_signals(stop), _workers(store, settings, count, stop):
        announce(f"{count} workers started; stop with Ctrl-C or SIGTERM.")
        while not stop.wait(1.0):
            pass
    logger.info("stopped")


class _Server(uvicorn.Server):
    """uvicorn, which also tells the workers to stop when it is told to."""

    def __init__(self, config: uvicorn.Config, stop: threading.Event) -> None:
        super().__init__(config)
        self._stop = stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stop.set()
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        # A signal that came before uvicorn took over the handlers set only
        # the event.
        if self._stop.is_set():
            self.should_exit = True
        return await super().on_tick(counter)


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    # Only the event is set here: logging from a signal handler can deadlock.
    def handler(sig: int, _: FrameType | None) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, restored in previous.items():
            signal.signal(sig, restored)


@contextmanager
def _workers(
    store: JobStore, settings: Settings, count: int, stop: threading.Event
) -> Iterator[None]:
    # Daemon threads: one still sending when the grace period ends must not
    # keep the process alive; its lease makes abandoning it safe.
    threads = [
        threading.Thread(
            target=Worker(store, settings).run,
            args=(stop,),
            name=f"pacsbridge-worker-{number}",
            daemon=True,
        )
        for number in range(1, count + 1)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        deadline = time.monotonic() + _WORKER_GRACE_SECONDS
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = sum(thread.is_alive() for thread in threads)
        if busy:
            logger.warning(
                "%d workers were still delivering and are abandoned; their leases "
                "end within jobs.lease_seconds and another worker resumes",
                busy,
            )


def _listen(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so a port in use is our error message and
    # exit code 2, not uvicorn's exit.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another with --host/--port or [server]"
        ) from None


def _tls_files(settings: Settings) -> tuple[str, str] | None:
    cert, key = settings.server.tls_cert, settings.server.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("server.tls_cert and server.tls_key are set together")
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise ConfigError(f"server.{name}: {path} is not a readable file")
    return str(cert), str(key)
