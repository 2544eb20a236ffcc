"""Character sets of the text we write."""

from __future__ import annotations

from collections.abc import Iterable

# PS3.3 C.12.1.1.2: ISO_IR 192 is UTF-8, one value, no code extensions.
UTF8 = "ISO_IR 192"


def specific_character_set(texts: Iterable[str]) -> str | None:
    """ISO_IR 192 when any text is not ASCII, else None (the default repertoire)."""
    return None if all(text.isascii() for text in texts) else UTF8
