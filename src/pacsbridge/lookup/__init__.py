"""Finding the patient and the order: worklist and study C-FIND; answers become
Orders.

``search`` lists what matches a person's search terms; ``worklist_entry`` and
``existing_study`` find the one entry a job is filed under, or say why not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pacsbridge.association import Peer
from pacsbridge.config import Settings
from pacsbridge.context import Order
from pacsbridge.errors import ConfigError, ContextError, QueryError
from pacsbridge.lookup import answers, find, queries
from pacsbridge.lookup.queries import LookupQuery, date_filter, typed_query

__all__ = [
    "LookupQuery",
    "Provider",
    "SearchResult",
    "date_filter",
    "existing_study",
    "order_json",
    "search",
    "typed_query",
    "worklist_entry",
]

logger = logging.getLogger(__name__)

Provider = Literal["worklist", "study", "dicomweb"]


@dataclass(frozen=True)
class SearchResult:
    """The orders found, in the provider's order; ``truncated`` when there were
    more than ``lookup.max_results``; ``unreadable`` answers could not be
    decoded and are not among the orders."""

    provider: str
    orders: list[Order]
    truncated: bool
    unreadable: int = 0


def search(
    settings: Settings, query: LookupQuery, provider: Provider | None = None
) -> SearchResult:
    """Ask the configured (or the named) provider for the orders matching
    ``query``."""
    provider = provider or settings.lookup.provider
    if provider == "dicomweb":
        # TODO: QIDO-RS study search comes with the DICOMweb transport (issue 7).
        raise ConfigError("the dicomweb lookup provider is not built yet")
    lookup = settings.lookup
    peer = _peer(settings, provider)
    if provider == "worklist":
        model, identifier = find.MODALITY_WORKLIST_FIND, queries.worklist_identifier
    else:
        model, identifier = find.STUDY_ROOT_FIND, queries.study_identifier
    result = find.find(
        peer, settings.local, model, identifier(query), lookup.max_results
    )

    orders: list[Order] = []
    unreadable = result.unreadable
    for ds in result.answers:
        if not answers.decode_answer(ds, lookup.default_charset):
            unreadable += 1
            continue
        if provider == "worklist":
            orders.extend(answers.worklist_orders(ds))
        else:
            orders.append(answers.study_order(ds))
    # An answer may hold several scheduled steps: the limit is on what is shown.
    truncated = result.truncated or len(orders) > lookup.max_results
    return SearchResult(provider, orders[: lookup.max_results], truncated, unreadable)


def worklist_entry(settings: Settings, accession_number: str) -> Order:
    """The one worklist entry with this accession number, on any date."""
    if not accession_number.strip():
        raise ContextError("--from-worklist needs an accession number")
    try:
        query = LookupQuery(accession_number=accession_number)
    except QueryError as exc:
        raise QueryError(str(exc).replace("--accession", "--from-worklist")) from None
    found = search(settings, query, "worklist")
    # Matching is the server's; the choice of patient is ours, so only an exact
    # match counts (a server may match loosely, or pad values).
    matches = [o for o in found.orders if o.accession_number == accession_number]
    return _the_one(found, matches, "worklist entry", "with this accession number")


def existing_study(settings: Settings, study_instance_uid: str) -> Order:
    """The one study with this Study Instance UID, on any date."""
    if not study_instance_uid.strip():
        raise ContextError("--from-study needs a Study Instance UID")
    try:
        query = LookupQuery(study_instance_uid=study_instance_uid)
    except QueryError:
        raise QueryError("--from-study is not a valid Study Instance UID") from None
    found = search(settings, query, "study")
    matches = [o for o in found.orders if o.study_instance_uid == study_instance_uid]
    return _the_one(found, matches, "study", "with this Study Instance UID")


def order_json(order: Order) -> dict[str, str]:
    """An order with the keys of ``lookup --json`` (DESIGN.md)."""
    return {
        "patient_id": order.patient_id,
        "patient_name": order.patient_name,
        "birth_date": order.birth_date,
        "sex": order.sex,
        "accession_number": order.accession_number,
        "study_instance_uid": order.study_instance_uid,
        "referring_physician": order.referring_physician,
        "modality": order.modality,
        "scheduled_date": order.scheduled_date or order.study_date,
        "scheduled_time": order.scheduled_time or order.study_time,
        "description": order.description,
    }


def _the_one(found: SearchResult, matches: list[Order], what: str, key: str) -> Order:
    # What we could not read, or were not sent, might be a second match.
    if found.unreadable:
        raise ContextError(
            f"{found.unreadable} of the lookup provider's answers could not be read, "
            f"so no {what} {key} can be known to be the only one"
        )
    if found.truncated:
        raise ContextError(
            "the lookup provider sent more than lookup.max_results answers (it may "
            f"not match on this key), so no {what} {key} can be known to be the "
            "only one"
        )
    if not matches:
        raise ContextError(f"the lookup provider knows no {what} {key}")
    distinct = set(matches)
    if len(distinct) > 1:
        raise ContextError(
            f"the lookup provider has {len(distinct)} different entries {key}; "
            "choose with `pacsbridge lookup` and type the context instead"
        )
    return matches[0]


def _peer(settings: Settings, provider: str) -> Peer:
    lookup = settings.lookup
    missing = [
        key
        for key, value in (
            ("ae_title", lookup.ae_title),
            ("host", lookup.host),
            ("port", lookup.port),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"lookup.{missing[0]} is not set: the {provider} provider needs "
            "ae_title, host and port in [lookup]"
        )
    assert lookup.ae_title is not None and lookup.port is not None
    return Peer(
        f"{provider} provider", lookup.ae_title, lookup.host, lookup.port,
        lookup.timeout,
    )  # fmt: skip
