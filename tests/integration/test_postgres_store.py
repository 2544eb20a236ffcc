"""The job store on a real PostgreSQL: migrations, and claims that never collide."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsbridge.jobs.store import Claim, JobStore, NewItem
from tests.postgres import PostgresCluster


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


def _item(job: int, number: int) -> NewItem:
    return NewItem(
        filename=f"photo{number}.jpg",
        path=f"jobs/{job}/inputs/{number}",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_instance_uid=f"2.25.{job}{number:03d}",
        transfer_syntax="1.2.840.10008.1.2.4.50",
        position=number,
        video=None,
        notes=(),
    )


def test_many_workers_claim_every_delivery_exactly_once(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    store = JobStore.open(postgres.url, tmp_path)
    for job in range(1, 121):
        store.create_job(
            f"job{job:04d}", "tester", None, {}, {}, f"jobs/{job}",
            [_item(job, 1)], ["pacs"],
        )  # fmt: skip
    again = JobStore.open(postgres.url, tmp_path)  # a second node: migrated already
    claims: dict[str, list[Claim]] = {"a": [], "b": [], "c": [], "d": []}

    def claim_all(owner: str, store: JobStore) -> None:
        while (claim := store.claim(owner, dt.timedelta(minutes=5))) is not None:
            claims[owner].append(claim)
            store.finish(claim, owner)

    threads = [
        threading.Thread(target=claim_all, args=(owner, (store, again)[n % 2]))
        for n, owner in enumerate(claims)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [c.delivery_id for owned in claims.values() for c in owned]
    assert len(claimed) == 120
    assert len(set(claimed)) == 120, "no delivery was claimed twice"
    assert sum(1 for owned in claims.values() if owned) >= 2, "the work was shared"
    assert {j.id for j in store.jobs(state="delivered", limit=200)} == {
        f"job{job:04d}" for job in range(1, 121)
    }
    store.engine.dispose()
    again.engine.dispose()
