"""`pacsbridge user add`: people who sign in, their passwords kept only as hashes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pacsbridge.errors import ConfigError
from pacsbridge.jobs.store import JobStore
from pacsbridge.jobs.users import add_user, check_password

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_their_password_only(tmp_path: Path) -> None:
    store = JobStore.open("", tmp_path)
    add_user(store, "nurse.one", "clinician", PASSWORD)

    assert check_password(store, "nurse.one", PASSWORD) == "clinician"
    assert check_password(store, "nurse.one", PASSWORD + "!") is None
    assert check_password(store, "nobody", PASSWORD) is None
    assert PASSWORD.encode() not in (tmp_path / "pacsbridge.db").read_bytes()
    store.engine.dispose()


@pytest.mark.parametrize(
    ("name", "role", "password", "problem"),
    [
        ("nurse one", "clinician", PASSWORD, "user name is 1 to 64"),
        ("nurse", "boss", PASSWORD, "--role is clinician or admin"),
        ("nurse", "admin", "short", "at least 10 characters"),
    ],
)
def test_a_bad_user_is_refused(
    tmp_path: Path, name: str, role: str, password: str, problem: str
) -> None:
    store = JobStore.open("", tmp_path)
    with pytest.raises(ConfigError, match=problem):
        add_user(store, name, role, password)
    store.engine.dispose()


def test_user_add_reads_the_password_from_standard_input(tmp_path: Path) -> None:
    config = tmp_path / "pacsbridge.toml"
    config.write_text(f'[local]\ndata_dir = "{tmp_path / "data"}"\n')

    def user_add(name: str, *options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pacsbridge", "--config", str(config), "user",
             "add", name, "--role", "admin", *options],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    added = user_add("admin1", "--password-stdin")
    again = user_add("admin1", "--password-stdin")
    no_stdin = user_add("admin2")

    assert added.returncode == 0, added.stderr
    assert (again.returncode, no_stdin.returncode) == (2, 2)
    assert "exists already" in again.stderr
    assert "--password-stdin" in no_stdin.stderr
    store = JobStore.open("", tmp_path / "data")
    assert check_password(store, "admin1", PASSWORD) == "admin"
    store.engine.dispose()
