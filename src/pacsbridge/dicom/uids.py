"""UIDs: PacsBridge's implementation identity and new instance UIDs under 2.25.

PS3.5 B.2: a UID under the root 2.25 is the decimal form of a UUID, so no registered
organisation root is needed and two gateways never collide.
"""

from __future__ import annotations

from pydicom.uid import UID, generate_uid

from pacsbridge import __version__

# uuid5(NAMESPACE_URL, "https://github.com/pacsbridge/pacsbridge"), fixed forever.
IMPLEMENTATION_CLASS_UID = UID("2.25.261147978242990128895812785848845523040")
# PS3.7 D.3.3.2.3: up to 16 characters of the default repertoire.
IMPLEMENTATION_VERSION_NAME = "PACSBRIDGE_" + __version__.replace(".", "")[:5]


def new_uid() -> UID:
    """A new, globally unique UID under the 2.25 root."""
    return generate_uid(prefix=None)
