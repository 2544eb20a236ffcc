"""C-FIND answers read into Orders, tolerantly.

A server may omit keys, send empty or padded values, leave out its Specific
Character Set while sending 8-bit text, or send a value that does not fit its
VR. None of that may break a search: each value is read on its own, and one that
cannot be read is empty in the Order (and noted in the log without its value).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import replace

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from pacsbridge.context import Code, Order

logger = logging.getLogger(__name__)


# Defined terms whose characters are all 7-bit (PS3.3 C.12.1.1.2): ASCII, and
# the Japanese G0 sets reached by escape sequences. A byte of 0x80 or more in
# text under these alone was written in some other character set.
_DEFAULT_TERMS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
_SEVEN_BIT_TERMS = _DEFAULT_TERMS | {"ISO 2022 IR 87", "ISO 2022 IR 159"}
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
_UNDEFINED_LENGTH = 0xFFFFFFFF


def decode_answer(ds: Dataset, default_charset: str) -> bool:
    """Decode every text of an answer by its own character set, or by
    ``default_charset`` when it declares none but the default repertoire
    (PS3.5 6.1.2.3).

    False when the answer is damaged and must not be used: a value shorter than
    its length says, or 8-bit bytes under character sets that have none (text
    written in one character set and labelled with another).
    """
    terms = _charset_terms(ds)
    if all(term in _DEFAULT_TERMS for term in terms):
        # Every defined term is a superset of ASCII: an answer that is plain ASCII
        # reads the same whichever one applies.
        ds.SpecificCharacterSet = default_charset
        terms = [default_charset]
        # pydicom reads a value with the character set its bytes were read with,
        # not the one set afterwards: without this, only names would use it.
        implicit_vr, little_endian = ds.original_encoding
        ds.set_original_encoding(
            implicit_vr, little_endian, convert_encodings(default_charset)
        )
    problem = _damage(ds, eight_bit=any(t not in _SEVEN_BIT_TERMS for t in terms))
    if problem:
        logger.warning("an answer is damaged and left out: %s", problem)
        return False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds.decode()
        except Exception as exc:  # e.g. BytesLengthException: a value of odd length
            logger.warning("an answer could not be decoded (%s)", type(exc).__name__)
    if caught:
        # pydicom's words may quote a value: counted, never repeated.
        logger.warning(
            "an answer decoded with warnings (%d; character set or value format)",
            len(caught),
        )
    return True


def _charset_terms(ds: Dataset) -> list[str]:
    value = _value(ds, "SpecificCharacterSet")
    if isinstance(value, MultiValue | list):
        return [str(term).strip() for term in value]
    return [str(value or "").strip()]


def _damage(ds: Dataset, eight_bit: bool) -> str:
    """What is wrong with the raw top-level values of ``ds``, or ""."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if not isinstance(raw, RawDataElement) or raw.value is None:
            continue
        if raw.length != _UNDEFINED_LENGTH and len(raw.value) != raw.length:
            return f"the value of {tag} is shorter than its length"
        vr = raw.VR or _dictionary_vr(tag)
        if not eight_bit and vr in _TEXT_VRS and any(b >= 0x80 for b in raw.value):
            return f"the text of {tag} has bytes its character set does not hold"
    return ""


def _dictionary_vr(tag: BaseTag) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:  # a private or unknown element
        return ""


def worklist_orders(ds: Dataset) -> Iterator[Order]:
    """One Order per scheduled step of a worklist answer (normally exactly one)."""
    steps = _items(ds, "ScheduledProcedureStepSequence") or [Dataset()]
    for step in steps:
        yield replace(
            _order(ds, "worklist"),
            modality=_text(step, "Modality"),
            scheduled_date=_text(step, "ScheduledProcedureStepStartDate"),
            scheduled_time=_text(step, "ScheduledProcedureStepStartTime"),
            requested_procedure_id=_text(ds, "RequestedProcedureID"),
            requested_procedure_description=_text(ds, "RequestedProcedureDescription"),
            requested_procedure_codes=_codes(ds, "RequestedProcedureCodeSequence"),
            scheduled_procedure_step_id=_text(step, "ScheduledProcedureStepID"),
            scheduled_procedure_step_description=_text(
                step, "ScheduledProcedureStepDescription"
            ),
            scheduled_protocol_codes=_codes(step, "ScheduledProtocolCodeSequence"),
        )


def study_order(ds: Dataset) -> Order:
    """The Order of a study-level answer: an existing study to add pictures to."""
    return replace(
        _order(ds, "study"),
        modality=_text(ds, "ModalitiesInStudy"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID"),
        study_description=_text(ds, "StudyDescription"),
    )


def _order(ds: Dataset, source: str) -> Order:
    # What worklist and study answers share: the patient and the study's keys.
    return Order(
        source=source,
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        accession_number=_text(ds, "AccessionNumber"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        referring_physician=_text(ds, "ReferringPhysicianName"),
    )


def _value(ds: Dataset, keyword: str) -> object:
    try:
        return ds.get(keyword, "")
    except Exception:
        logger.warning("an answer's %s could not be read", keyword)
        return ""


def _text(ds: Dataset, keyword: str) -> str:
    value = _value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v).strip() for v in value)
    if isinstance(value, bytes):  # a value whose VR pydicom could not tell
        return value.decode("ascii", "replace").strip(" \x00")
    return str(value).strip(" \x00")


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    value = _value(ds, keyword)
    if not isinstance(value, Sequence):  # absent, empty, or not a sequence at all
        return []
    return [item for item in value if isinstance(item, Dataset)]


def _codes(ds: Dataset, keyword: str) -> tuple[Code, ...]:
    codes = []
    for item in _items(ds, keyword):
        code = Code(
            value=_text(item, "CodeValue") or _text(item, "LongCodeValue"),
            scheme=_text(item, "CodingSchemeDesignator"),
            meaning=_text(item, "CodeMeaning"),
            scheme_version=_text(item, "CodingSchemeVersion"),
        )
        if code.value or code.scheme or code.meaning:  # an all-empty item is none
            codes.append(code)
    return tuple(codes)
