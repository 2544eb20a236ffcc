"""P-DATA is written in bounded batches: a file-backed video is never pinned whole."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest

from pacsbridge.deliver import pdata

_PDU_HEADER = 12  # PDU type, reserved, length; PDV length, context ID, control


class RecordingSocket:
    """Takes every byte at once and remembers how much each call carried."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def sendmsg(self, buffers: Sequence[bytes | memoryview]) -> int:
        total = sum(len(b) for b in buffers)
        self.calls.append(total)
        return total


def chunks(count: int, size: int) -> Iterator[bytes]:
    for _ in range(count):
        yield bytes(size)  # a fresh chunk each time, as a file read gives


def test_large_pdus_are_sent_in_batches_of_bounded_size() -> None:
    sock = RecordingSocket()
    total, fragment = 200 << 20, (4 << 20) - 6  # 1 MiB chunks, 4 MiB PDUs
    buffers = pdata._pdus(1, chunks(200, 1 << 20), total, fragment, 0, 2)

    pdata._send_all(sock, buffers)  # type: ignore[arg-type]

    assert sum(sock.calls) == total + _PDU_HEADER * math.ceil(total / fragment)
    assert max(sock.calls) <= pdata._BATCH_BYTES + (1 << 20) + _PDU_HEADER
    assert len(sock.calls) >= total // pdata._BATCH_BYTES


def test_a_data_set_shorter_than_announced_is_an_error() -> None:
    with pytest.raises(OSError, match="shorter than announced"):
        list(pdata._pdus(1, chunks(1, 100), 200, 1024, 0, 2))


def test_a_data_set_longer_than_announced_is_an_error() -> None:
    with pytest.raises(OSError, match="longer than announced"):
        list(pdata._pdus(1, chunks(2, 100), 100, 1024, 0, 2))
