"""Shared pytest setup: real peers on 127.0.0.1 and the photo corpus.

A fixture whose peer binary is missing skips its test, or fails it when
``PACSBRIDGE_REQUIRE_PEERS=1`` is set (as CI does), see ``require_or_skip``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import Orthanc, StoreSCP, require_or_skip


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """One Orthanc for the whole session; ``orthanc.clear()`` empties it.

    Session-wide because a graceful Orthanc stop takes about two seconds.
    """
    require_or_skip(["Orthanc"])
    with Orthanc(workdir=tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def empty_orthanc(orthanc: Orthanc) -> Orthanc:
    """The session's Orthanc, emptied before the test."""
    orthanc.clear()
    return orthanc


@pytest.fixture
def storescp_all(tmp_path: Path) -> Iterator[StoreSCP]:
    """A fresh storescp that accepts every transfer syntax (``+xa``)."""
    require_or_skip(["storescp"])
    with StoreSCP(accept="all", workdir=tmp_path / "storescp-all") as scp:
        yield scp


@pytest.fixture
def storescp_implicit(tmp_path: Path) -> Iterator[StoreSCP]:
    """A fresh storescp that accepts Implicit VR Little Endian only (``+xi``)."""
    require_or_skip(["storescp"])
    with StoreSCP(accept="implicit", workdir=tmp_path / "storescp-implicit") as scp:
        yield scp


@pytest.fixture
def corpus_dir() -> Path:
    """Folder of the EXIF orientation photos (see tests/data/README.md)."""
    return Path(__file__).parent / "data" / "exif-orientation"
