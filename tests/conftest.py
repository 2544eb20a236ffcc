"""Shared pytest setup: real peers on 127.0.0.1 and the photo corpus.

A fixture whose peer binary is missing skips its test, or fails it when
``PACSBRIDGE_REQUIRE_PEERS=1`` is set (as CI does), see ``require_or_skip``.

The query peers (wlmscpfs, dcmqrscp and an Orthanc of their own) serve the
same worklist and studies for the whole session, written for one
``lookup_today``; tests must not change what they hold.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lookup_peers import QueryRetrieveSCP, WorklistSCP
from tests.peers import Orthanc, StoreSCP, require_or_skip
from tests.studies import StudyFiles, make_study_files
from tests.worklists import WorklistFiles, write_worklist


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


# Query peers


@pytest.fixture(scope="session")
def lookup_today() -> datetime.date:
    """The day the worklist and study dates count from, fixed for the session."""
    return datetime.date.today()


@pytest.fixture(scope="session")
def worklist_files(
    tmp_path_factory: pytest.TempPathFactory, lookup_today: datetime.date
) -> WorklistFiles:
    """Our worklist items and DCMTK's samples as ``*.wl`` files, for today."""
    require_or_skip(["dump2dcm"])
    return write_worklist(tmp_path_factory.mktemp("worklist"), today=lookup_today)


@pytest.fixture(scope="session")
def study_files(
    tmp_path_factory: pytest.TempPathFactory, lookup_today: datetime.date
) -> StudyFiles:
    """The studies of tests/studies.py as DICOM files, dated from today."""
    folder = tmp_path_factory.mktemp("studies")
    return StudyFiles(
        folder, lookup_today, tuple(make_study_files(folder, lookup_today))
    )


@pytest.fixture(scope="session")
def wlmscpfs(
    tmp_path_factory: pytest.TempPathFactory, worklist_files: WorklistFiles
) -> Iterator[WorklistSCP]:
    """wlmscpfs serving ``worklist_files``, answers in each file's charset (-csk)."""
    require_or_skip(["wlmscpfs"])
    workdir = tmp_path_factory.mktemp("wlmscpfs")
    with WorklistSCP(worklist_files.paths, keep_charset=True, workdir=workdir) as scp:
        yield scp


@pytest.fixture(scope="session")
def dcmqrscp(
    tmp_path_factory: pytest.TempPathFactory, study_files: StudyFiles
) -> Iterator[QueryRetrieveSCP]:
    """dcmqrscp holding ``study_files``, stored with storescu."""
    require_or_skip(["dcmqrscp", "storescu"])
    with QueryRetrieveSCP(workdir=tmp_path_factory.mktemp("dcmqrscp")) as scp:
        scp.store(study_files.paths)
        yield scp


def _lookup_orthanc(
    workdir: Path,
    worklist_files: WorklistFiles,
    study_files: StudyFiles,
    default_encoding: str | None,
) -> Orthanc:
    server = Orthanc(workdir=workdir, default_encoding=default_encoding).start()
    try:
        for path in worklist_files.paths:
            (server.worklist_dir / path.name).write_bytes(path.read_bytes())
        for path in study_files.paths:
            server.upload(path.read_bytes())
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def lookup_orthanc(
    tmp_path_factory: pytest.TempPathFactory,
    worklist_files: WorklistFiles,
    study_files: StudyFiles,
) -> Iterator[Orthanc]:
    """An Orthanc of its own holding ``worklist_files`` and ``study_files``.

    Its ``DefaultEncoding`` is UTF-8, so its answers keep every name; the
    session's ``orthanc`` is not used because ``empty_orthanc`` clears it.
    """
    require_or_skip(["Orthanc"])
    workdir = tmp_path_factory.mktemp("orthanc-lookup")
    server = _lookup_orthanc(workdir, worklist_files, study_files, "Utf8")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def orthanc_worklist(lookup_orthanc: Orthanc) -> Orthanc:
    """Orthanc answering worklist C-FIND for ``worklist_files`` (UTF-8 answers)."""
    return lookup_orthanc


@pytest.fixture(scope="session")
def orthanc_studies(lookup_orthanc: Orthanc) -> Orthanc:
    """Orthanc answering Study Root C-FIND for ``study_files`` (UTF-8 answers)."""
    return lookup_orthanc


@pytest.fixture(scope="session")
def orthanc_latin1_lookup(
    tmp_path_factory: pytest.TempPathFactory,
    worklist_files: WorklistFiles,
    study_files: StudyFiles,
) -> Iterator[Orthanc]:
    """Like ``lookup_orthanc``, but with Orthanc's own default encoding, Latin-1.

    Its answers are all ISO_IR 100; what Latin-1 cannot hold is dropped.
    """
    require_or_skip(["Orthanc"])
    workdir = tmp_path_factory.mktemp("orthanc-latin1")
    server = _lookup_orthanc(workdir, worklist_files, study_files, None)
    yield server
    server.stop()
