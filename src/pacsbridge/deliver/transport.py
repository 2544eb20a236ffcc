"""Socket options that keep DICOM associations from stalling on TCP timers.

Stock storescp and Orthanc send each C-STORE response in two segments. Nagle's
algorithm on their side holds the second until our delayed ACK of the first, about
40 ms per object. Acknowledging at once (TCP_QUICKACK, which Linux clears after
each read and so is set again after every read) removes the stall; TCP_NODELAY
keeps our own last, short PDU of each message from waiting the same way.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from pynetdicom import evt

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def tune_socket(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: switch Nagle off and acknowledge every read at once."""
    assoc_socket: Any = event.assoc.dul.socket
    sock: socket.socket | None = assoc_socket.socket if assoc_socket else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _QUICKACK is None:
        return
    quickack: int = _QUICKACK
    read = assoc_socket.recv

    def recv_and_ack(nr_bytes: int) -> bytearray:
        data: bytearray = read(nr_bytes)
        # A closed connection fails here too; the DUL reports that itself.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        return data

    sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    assoc_socket.recv = recv_and_ack
