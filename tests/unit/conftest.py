"""Fixtures of the unit tests: a still loaded from bytes, and the real photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbridge.config import ImageSettings
from pacsbridge.media.stills import Still, load_still
from tests.unit.imagegen import LoadStill

_HERE = Path(__file__).resolve().parent
_PHOTO_DIRS = (
    _HERE.parent / "data" / "exif-orientation",
    Path("/work/shared/corpus/exif-orientation"),
)


@pytest.fixture
def load(tmp_path: Path) -> LoadStill:
    """``load(data, name="input.jpg", quality=90, max_pixels=...)``: write the
    bytes to a file of that name and make a Still of it."""

    def _load(data: bytes, name: str = "input.jpg", **settings: object) -> Still:
        path = tmp_path / name
        path.write_bytes(data)
        return load_still(path, ImageSettings.model_validate(settings))

    return _load


@pytest.fixture(scope="session")
def photos() -> Path:
    """The folder of real phone photos in every EXIF orientation."""
    for folder in _PHOTO_DIRS:
        if (folder / "Landscape_1.jpg").is_file():
            return folder
    pytest.skip("the exif-orientation photos are not in tests/data")
