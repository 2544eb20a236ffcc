"""``/api/lookup`` and ``/api/destinations``: the peers PacsBridge asks and sends to.

The lookup answers exactly as ``pacsbridge lookup --json``. Its search terms
arrive in the query string (DESIGN.md): they are patient data, so the request
log records paths only.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations,
# and the dependency aliases they use are local to the router factories.

import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response

from pacsbridge import lookup
from pacsbridge.api.auth import Principal, require_role
from pacsbridge.config import (
    Destination,
    DicomDestination,
    DicomWebDestination,
    Hl7Destination,
    Settings,
)
from pacsbridge.deliver import dimse
from pacsbridge.errors import AssociationError, ConfigError

logger = logging.getLogger(__name__)

# Set when the provider had more matches than lookup.max_results.
TRUNCATED_HEADER = "X-Lookup-Truncated"


def peers_router(
    settings: Settings, authenticated: Callable[..., Principal]
) -> APIRouter:
    """The lookup and destination routes, for callers admitted by ``authenticated``."""
    router = APIRouter(prefix="/api", dependencies=[Depends(authenticated)])
    Admin = Annotated[Principal, Depends(require_role(authenticated, "admin"))]

    @router.get("/lookup", tags=["lookup"])
    def search(
        response: Response,
        provider: lookup.Provider | None = None,
        name: str = "",
        patient_id: str = "",
        accession: str = "",
        modality: str = "",
        date: str | None = None,
    ) -> list[dict[str, str]]:
        """Patients and orders: worklist entries or existing studies."""
        query = lookup.typed_query(
            name, patient_id, accession, modality, date,
            settings.lookup.date_range_days,
        )  # fmt: skip
        result = lookup.search(settings, query, provider)
        if result.truncated:
            response.headers[TRUNCATED_HEADER] = str(settings.lookup.max_results)
        if result.unreadable:
            logger.warning("lookup: %d answers could not be read", result.unreadable)
        return [lookup.order_json(order) for order in result.orders]

    @router.get("/destinations", tags=["destinations"])
    def destinations() -> list[dict[str, Any]]:
        """The configured destinations, without their credentials."""
        return [_describe(destination) for destination in settings.destinations]

    @router.post("/destinations/{name}/echo", tags=["destinations"])
    def echo(name: str, caller: Admin) -> dict[str, Any]:
        """Check a destination answers (DICOM C-ECHO); ``ok`` says whether it did."""
        destination = settings.destination(name)
        if not isinstance(destination, DicomDestination):
            raise ConfigError(
                f"destination {name!r} is of kind {destination.kind!r}, which this "
                "version cannot check yet (only 'dicom')"
            )
        try:
            seconds = dimse.echo(destination, settings.local)
        except AssociationError as exc:
            logger.info("C-ECHO to %s by %s failed", name, caller.name)
            return {"destination": name, "ok": False, "error": str(exc)}
        return {"destination": name, "ok": True, "milliseconds": seconds * 1000}

    return router


def _describe(destination: Destination) -> dict[str, Any]:
    where: str
    if isinstance(destination, DicomDestination):
        where = f"{destination.ae_title}@{destination.host}:{destination.port}"
    elif isinstance(destination, Hl7Destination):
        where = f"{destination.host}:{destination.port}"
    else:
        where = _without_credentials(destination.url)
    described: dict[str, Any] = {
        "name": destination.name,
        "kind": destination.kind,
        "enabled": destination.enabled,
        "address": where,
    }
    if isinstance(destination, DicomWebDestination | DicomDestination):
        described["sop_class"] = destination.sop_class
    return described


def _without_credentials(address: str) -> str:
    # A URL may carry a user name and password: never shown.
    url = urlsplit(address)
    try:
        port = url.port
    except ValueError:
        port = None
    host = url.hostname or ""
    return url._replace(netloc=f"{host}:{port}" if port else host).geturl()
