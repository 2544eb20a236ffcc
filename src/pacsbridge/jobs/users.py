"""People who sign in to the page: created by ``pacsbridge user add``.

Passwords are kept only as Argon2id hashes (argon2-cffi's defaults); a check
takes the same time whether the name exists or not.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pacsbridge.errors import ConfigError
from pacsbridge.jobs.models import User
from pacsbridge.jobs.store import JobStore, now

ROLES = ("clinician", "admin")
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verified when a name is unknown, so a wrong name costs what a wrong password does.
_DUMMY = _hasher.hash("not a password of anyone")


def add_user(store: JobStore, name: str, role: str, password: str) -> None:
    """Create a user; ConfigError says what is wrong with the name, role or
    password (never the password itself)."""
    if not _NAME.match(name):
        raise ConfigError(
            "a user name is 1 to 64 letters, digits or . _ @ - (no spaces)"
        )
    if role not in ROLES:
        raise ConfigError(f"--role is {' or '.join(ROLES)}")
    if len(password) < _MIN_PASSWORD:
        raise ConfigError(f"the password must be at least {_MIN_PASSWORD} characters")
    hashed = _hasher.hash(password)  # slow on purpose: not inside the transaction
    with store.session() as s:
        if s.get(User, name) is not None:
            raise ConfigError(f"user {name!r} exists already")
        s.add(User(name=name, role=role, password_hash=hashed, created_at=now()))


def check_password(store: JobStore, name: str, password: str) -> str | None:
    """The user's role when ``password`` is theirs, else None."""
    with store.session() as s:
        user = s.get(User, name)
        stored = user.password_hash if user is not None else _DUMMY
        role = user.role if user is not None else None
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return role
