"""Writing a C-STORE request as P-DATA-TF PDUs straight onto the association's socket.

pynetdicom negotiates, reads and answers; we only take over the one hot path: the
request's fragments. pynetdicom hands each PDU through a queue to its DUL thread
and encodes it there, about 125 µs of CPU per PDU: at a peer's 16 KiB maximum that
is 250 PDUs and 30 ms for one phone photo. Here each PDU is a 12-byte header and a
view of the encoded object, written many to a system call (PS3.8 9.3.5, E.2).

Writing from this thread is safe because the association is established and idle
between messages: in state Sta6 sending P-DATA changes no state (PS3.8 9.2, DT-1).
pynetdicom's reactor thread, which serves incoming requests, is held for the whole
job (:func:`reactor_held`), so it cannot take a response meant for us.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pydicom.uid import UID

Buffer = bytes | memoryview

_IOV_BATCH = 512  # well under Linux's IOV_MAX of 1024
# Bytes a batch may hold: with a peer that allows 4 MiB PDUs, 512 buffers could
# pin hundreds of megabytes of a video read from its file.
_BATCH_BYTES = 8 << 20
_SMALLEST_PDU = 1024  # below this a peer is broken, not frugal
_UNLIMITED_FRAGMENT = 1 << 22  # a peer that allows any PDU size still gets 4 MiB
_COMMAND_LAST = 0x03  # message control header: command, last fragment
_DATA = 0x00
_DATA_LAST = 0x02


def c_store_command(
    message_id: int, sop_class_uid: UID, sop_instance_uid: UID
) -> bytes:
    """The C-STORE-RQ command set, Implicit VR Little Endian (PS3.7 9.3.1.1).

    Seven fixed elements, packed directly: encoding them through pydicom cost
    more than sending a photo's last PDUs.
    """
    elements = b"".join(
        (
            _element(0x0002, _ui(sop_class_uid)),  # Affected SOP Class UID
            _element(0x0100, struct.pack("<H", 0x0001)),  # Command Field: C-STORE-RQ
            _element(0x0110, struct.pack("<H", message_id)),  # Message ID
            _element(0x0700, struct.pack("<H", 0x0000)),  # Priority: medium
            # Command Data Set Type: anything but 0x0101 means a data set follows.
            _element(0x0800, struct.pack("<H", 0x0000)),
            _element(0x1000, _ui(sop_instance_uid)),  # Affected SOP Instance UID
        )
    )
    group_length = _element(0x0000, struct.pack("<I", len(elements)))
    return group_length + elements


def _element(element: int, value: bytes) -> bytes:
    # Group 0000, Implicit VR Little Endian: tag, 32-bit length, value.
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _ui(uid: str) -> bytes:
    # PS3.5 6.2: UI values are padded to even length with a NUL.
    value = uid.encode("ascii")
    return value + b"\x00" if len(value) % 2 else value


def send_request(
    assoc: Any,
    context_id: int,
    command: bytes,
    data_set: Iterable[Buffer],
    data_set_length: int,
) -> Any:
    """Send one request with its data set and wait for the response primitive.

    ``data_set`` is read once, as it is sent: a file-backed data set is never in
    memory whole. It must hold exactly ``data_set_length`` bytes.

    Returns pynetdicom's response primitive, or None when none arrived within
    the DIMSE timeout or the association went away.
    """
    sock: socket.socket = assoc.dul.socket.socket
    # pynetdicom leaves the socket blocking once connected; a peer that stops
    # reading must not hold a send for ever.
    sock.settimeout(assoc.dimse_timeout)
    max_pdu = assoc.acceptor.maximum_length or 0
    if 0 < max_pdu < _SMALLEST_PDU:
        raise OSError(f"the peer's maximum PDU length of {max_pdu} bytes is too small")
    # PS3.8 9.3.5: the PDU's variable field holds one PDV item: 4 bytes of length,
    # 1 of context ID, 1 of message control header, then the fragment.
    fragment = max_pdu - 6 if max_pdu else _UNLIMITED_FRAGMENT

    iov = _pdus(
        context_id, [command], len(command), fragment, _COMMAND_LAST, _COMMAND_LAST
    )
    _send_all(sock, iov)
    iov = _pdus(context_id, data_set, data_set_length, fragment, _DATA, _DATA_LAST)
    _send_all(sock, iov)
    _, response = assoc.dimse.get_msg(block=True)
    return response


# TODO: relies on pynetdicom 3.0 internals (the reactor checkpoint and its waiters,
# dul.socket); re-run the delivery tests on any pynetdicom upgrade.
@contextmanager
def reactor_held(assoc: Any, timeout: float = 5.0) -> Iterator[None]:
    """Hold pynetdicom's reactor thread until the block ends.

    The reactor polls the DIMSE queue for requests to serve and would drop a
    C-STORE response it took as "unexpected". pynetdicom pauses it around each of
    its own requests by watching a flag the reactor sets just before it blocks;
    that leaves a window in which the reactor has passed the checkpoint and has
    yet to poll. Here we wait until the reactor thread really waits on the
    checkpoint, once, before the first request: nothing can be stolen after that.
    """
    checkpoint = assoc._reactor_checkpoint
    checkpoint.clear()
    deadline = time.monotonic() + timeout
    try:
        while not checkpoint._cond._waiters and assoc.is_alive():
            if time.monotonic() > deadline:
                raise OSError("the association's reactor did not pause")
            time.sleep(0.0002)
        yield
    finally:
        checkpoint.set()


def _pdus(
    context_id: int,
    parts: Iterable[Buffer],
    total: int,
    fragment: int,
    control: int,
    last_control: int,
) -> Iterator[Buffer]:
    """The buffers of P-DATA-TF PDUs carrying the ``total`` bytes of ``parts``."""
    views = (memoryview(p).cast("B") for p in parts if len(p))
    view, offset, remaining = memoryview(b""), 0, total
    while remaining > 0 or total == 0:
        size = min(fragment, remaining)
        remaining -= size
        mch = last_control if remaining == 0 else control
        yield struct.pack(">BBIIBB", 0x04, 0, size + 6, size + 2, context_id, mch)
        while size > 0:
            if offset == len(view):
                view, offset = _next_view(views), 0
            take = min(size, len(view) - offset)
            yield view[offset : offset + take]
            size -= take
            offset += take
        if total == 0:
            return
    if next(views, None) is not None:
        raise OSError("the data set is longer than announced")


def _next_view(views: Iterator[memoryview]) -> memoryview:
    view = next(views, None)
    if view is None:
        raise OSError("the data set is shorter than announced")
    return view


def _send_all(sock: socket.socket, buffers: Iterator[Buffer]) -> None:
    batch: list[Buffer] = []
    size = 0
    for buffer in buffers:
        batch.append(buffer)
        size += len(buffer)
        if len(batch) >= _IOV_BATCH or size >= _BATCH_BYTES:
            _sendmsg_all(sock, batch)
            batch, size = [], 0
    if batch:
        _sendmsg_all(sock, batch)


def _sendmsg_all(sock: socket.socket, batch: list[Buffer]) -> None:
    # sendmsg may write part of the batch; resume from the first unsent byte.
    start = 0
    while start < len(batch):
        sent = sock.sendmsg(batch[start:])
        while start < len(batch) and sent >= len(batch[start]):
            sent -= len(batch[start])
            start += 1
        if sent:
            batch[start] = memoryview(batch[start])[sent:]
