"""DICOM associations with a peer: opening, explaining a refusal, ending them.

Shared by the lookup providers (C-FIND) and the DICOM destinations (C-ECHO,
C-STORE). The error a failure raises is the caller's own, so a worklist that
cannot be reached is a lookup error and a PACS that cannot be reached a delivery
error.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.uid import UID
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

from pacsbridge.config import LocalSettings
from pacsbridge.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsbridge.errors import PacsBridgeError

logger = logging.getLogger(__name__)

# Identifiers are patient data: pynetdicom must never log them, nor its own
# per-message dumps that would carry them.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
_config.LOG_HANDLER_LEVEL = "none"

Handler = tuple[Any, Callable[..., Any]]


@dataclass(frozen=True)
class Peer:
    """A DICOM application entity we call, and how it is named in messages."""

    label: str  # "destination 'pacs'", "worklist provider"
    ae_title: str
    host: str
    port: int
    timeout: float

    def __str__(self) -> str:
        return f"{self.label} ({self.ae_title}@{self.host}:{self.port})"


def presentation_context(
    sop_class: str, syntaxes: Sequence[str]
) -> PresentationContext:
    """A requested presentation context for one SOP class."""
    cx = PresentationContext()
    cx.abstract_syntax = UID(sop_class)
    cx.transfer_syntax = [UID(ts) for ts in syntaxes]
    return cx


def _shutdown_socket(self: AssociationSocket) -> None:
    sock = self.socket
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # fails on a socket that never connected
    sock.close()


# TODO: pynetdicom 3.0 skips close() when shutdown() fails, as it does after a
# refused connection, and leaves the socket to the garbage collector; a service
# that retries all day closes it itself. Drop this once pynetdicom closes it.
AssociationSocket._shutdown_socket = _shutdown_socket  # type: ignore[method-assign]


@contextmanager
def open_association(
    peer: Peer,
    local: LocalSettings,
    contexts: list[PresentationContext],
    error: type[PacsBridgeError],
    handlers: Sequence[Handler] = (),
) -> Iterator[Association]:
    """An established association with ``peer``, released on leaving the block.

    Any failure to establish it raises ``error`` with a sentence naming the peer.
    Leaving the block by an exception aborts the association instead.
    """
    if len(contexts) > 128:  # PS3.8 9.3.2.2: context IDs are odd numbers 1 to 255
        raise error(f"{peer}: too many presentation contexts")
    ae = AE(ae_title=local.ae_title)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.maximum_pdu_size = local.max_pdu
    ae.requested_contexts = contexts
    for attr in (
        "acse_timeout",
        "dimse_timeout",
        "network_timeout",
        "connection_timeout",
    ):
        setattr(ae, attr, peer.timeout)

    connected: list[bool] = []
    all_handlers: list[Any] = [
        (evt.EVT_CONN_OPEN, lambda _: connected.append(True)),
        *handlers,
    ]
    try:
        assoc = ae.associate(
            peer.host, peer.port, ae_title=peer.ae_title, evt_handlers=all_handlers
        )
    except OSError as exc:  # the host name does not resolve, among others
        ae.shutdown()
        raise error(f"{peer} could not be reached ({exc.strerror or exc})") from None
    except BaseException:
        drop(ae)  # interrupted while negotiating
        raise
    if not assoc.is_established:
        ae.shutdown()
        raise error(_why_not_established(peer, assoc, connected))
    logger.info(
        "association with %s established (peer max PDU %s)",
        peer.label,
        assoc.acceptor.maximum_length,
    )
    try:
        yield assoc
    except KeyboardInterrupt:
        drop(ae)
        raise
    except BaseException:
        # Stopped half-way: a release would be a protocol error then (PS3.8 7.2);
        # an abort tells the peer to drop the rest.
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()
    finally:
        ae.shutdown()


def drop(ae: AE) -> None:
    """Stop this AE's connections at once, without waiting on the peer.

    A person pressed Ctrl-C: an orderly A-ABORT waits for a peer that may never
    answer, and pynetdicom's DUL threads, which are not daemons, would keep the
    process alive. Closing the connection is an abort too (PS3.8 7.3.2).
    """
    for thread in threading.enumerate():
        if isinstance(thread, DULServiceProvider) and thread.assoc.ae is ae:
            thread.kill_dul()
            if thread.socket is not None:
                thread.socket.close()


def _why_not_established(peer: Peer, assoc: Association, connected: list[bool]) -> str:
    if not connected:
        return (
            f"{peer} could not be reached: connection refused or no answer within "
            f"{peer.timeout:g} s (is it running, are host and port right?)"
        )
    if assoc.is_rejected:
        return f"{peer} rejected the association ({_rejection(assoc)})"
    response = assoc.acceptor.primitive
    if response is not None and response.result == 0:
        return (
            f"{peer} accepted none of the SOP classes and transfer syntaxes we proposed"
        )
    if assoc.is_aborted:
        return (
            f"{peer} aborted or did not answer the association request within "
            f"{peer.timeout:g} s (is it a DICOM service, and are the AE "
            "titles right?)"
        )
    return f"{peer} did not answer the association request in time"


def _rejection(assoc: Association) -> str:
    response = assoc.acceptor.primitive
    if response is None:
        return "no reason given"
    reason = {
        (1, 1): "no reason given",
        (1, 2): "application context not supported",
        (1, 3): "our AE title is not recognised",
        (1, 7): "its AE title is not the one we called",
        (2, 1): "no reason given",
        (2, 2): "protocol version not supported",
        (3, 1): "temporary congestion",
        (3, 2): "local limit exceeded",
    }.get(
        (response.result_source or 0, response.diagnostic or 0),
        f"reason code {response.result_source}/{response.diagnostic}",
    )
    kind = "permanent" if response.result == 1 else "transient"
    return f"{kind}: {reason}"
