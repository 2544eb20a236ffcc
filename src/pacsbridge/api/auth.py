"""Who is calling: API keys now, people's sessions later (issue 6).

Every route but ``/healthz`` depends on :func:`authenticated`, which answers a
:class:`Principal` or 401. An integrator's key is never stored or logged as it
is: the principal is named after the first characters of its SHA-256.
"""

# No `from __future__ import annotations`: FastAPI reads these dependencies'
# annotations, which name the closures' own ``authenticated``.

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Role = Literal["clinician", "admin"]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API key",
    description="`Authorization: Bearer <key>` with a key of `[api] keys`.",
)


@dataclass(frozen=True)
class Principal:
    """The caller: the name recorded as ``submitted_by`` and in the audit."""

    name: str
    role: Role


class KeyRing:
    """The configured API keys; each is an integrator with the admin role."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [key.encode() for key in keys if key]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def principal(self, presented: str) -> Principal | None:
        """The principal of ``presented``, or None when it is no configured key."""
        offered = presented.encode()
        # Every key is compared, in constant time each: neither the timing nor
        # the number of comparisons tells which key came close.
        found: bytes | None = None
        for key in self._keys:
            if hmac.compare_digest(offered, key):
                found = key
        if found is None:
            return None
        return Principal(key_principal_name(found), "admin")


def key_principal_name(key: bytes) -> str:
    """``api-key:`` and six hex digits of the key's SHA-256: enough to tell keys
    apart in the audit, far too little to recover one."""
    return "api-key:" + hashlib.sha256(key).hexdigest()[:6]


def authenticator(keys: KeyRing) -> Callable[..., Principal]:
    """The dependency that admits the holders of ``keys``."""

    def authenticated(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("an API key is required: Authorization: Bearer <key>")
        principal = keys.principal(credentials.credentials)
        if principal is None:
            raise _unauthorized("the API key is not valid", 'error="invalid_token"')
        return principal

    return authenticated


def require_role(
    authenticated: Callable[..., Principal], role: Role
) -> Callable[..., Principal]:
    """A dependency that admits only principals of ``role`` (admin admits all)."""

    def allowed(
        principal: Annotated[Principal, Depends(authenticated)],
    ) -> Principal:
        if principal.role not in (role, "admin"):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs the {role} role"
            )
        return principal

    return allowed


def _unauthorized(message: str, params: str = "") -> HTTPException:
    challenge = "Bearer " + params if params else "Bearer"
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge}
    )
