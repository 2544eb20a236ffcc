"""The errors PacsBridge raises, one small hierarchy.

::

    PacsBridgeError
    ├── ConfigError        the configuration file or a setting is wrong (exit 2)
    ├── ContextError       the patient or study context is incomplete (exit 2)
    ├── InputRejected      an input file cannot become a DICOM object (exit 3)
    ├── QueryError         a lookup's search terms are malformed (exit 2)
    ├── LookupFailed       the worklist or study provider did not answer the query
    └── DeliveryError      a destination did not take the objects (exit 1)
        └── AssociationError  no association, or it was aborted or timed out

Messages are sentences naming the file, the setting or the peer. They never carry
patient data: names, IDs and birth dates stay out of every message.
"""

from __future__ import annotations

from pathlib import Path


class PacsBridgeError(Exception):
    """Root of every error PacsBridge raises on purpose."""

    exit_code = 1


class ConfigError(PacsBridgeError):
    """The configuration is missing, malformed or holds a bad value."""

    exit_code = 2


class ContextError(PacsBridgeError):
    """The capture context lacks what every object needs, such as the Patient ID."""

    exit_code = 2


class InputRejected(PacsBridgeError):
    """An input file cannot be turned into a DICOM object."""

    exit_code = 3

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.rejected: tuple[InputRejected, ...] = (self,)
        super().__init__(f"{self.path}: {problem}")

    @classmethod
    def many(cls, rejected: list[InputRejected]) -> InputRejected:
        """One error for several bad files: the first names them all, one a line."""
        if len(rejected) == 1:
            return rejected[0]
        first = rejected[0]
        combined = cls(first.path, first.problem)
        combined.rejected = tuple(rejected)
        combined.args = ("\n".join(str(r) for r in rejected),)
        return combined


class QueryError(PacsBridgeError):
    """A search term of a lookup is malformed: a bad date, a wildcard in an ID."""

    exit_code = 2


class LookupFailed(PacsBridgeError):
    """The lookup provider could not be asked, or it failed or cancelled the query.

    Never an empty answer in disguise: a query that did not complete is an error.
    """

    exit_code = 1


class DeliveryError(PacsBridgeError):
    """A destination refused or lost some of the objects of a job."""

    exit_code = 1


class AssociationError(DeliveryError):
    """No association could be made, or it was rejected, aborted or timed out."""
