"""The settings model: one TOML file, checked completely at start.

Every key has a default or a clear error. Unknown keys and bad values stop the program
with a message naming the key and the file. Secrets and the log level may also come
from the environment (``PACSBRIDGE_LOG_LEVEL``, ``PACSBRIDGE_API_KEYS``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from stat import S_ISREG
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydicom.charset import python_encoding

from pacsbridge.errors import ConfigError

CONFIG_ENV = "PACSBRIDGE_CONFIG"
DEFAULT_CONFIG_NAME = "pacsbridge.toml"


def _check_ae_title(value: str) -> str:
    # PS3.5 6.2: AE is at most 16 characters of the default repertoire, no backslash,
    # no control characters, and leading/trailing spaces are not significant.
    title = value.strip()
    if not title:
        raise ValueError("an AE title must not be empty")
    if len(title) > 16:
        raise ValueError("an AE title has at most 16 characters")
    if not all(" " <= ch <= "~" for ch in title) or "\\" in title:
        raise ValueError("an AE title holds only printable ASCII and no backslash")
    return title


def _check_text(value: str) -> str:
    # LO/SH values (PS3.5 6.2): no backslash (the value delimiter), no control
    # characters; each becomes an attribute of every object we write.
    if "\\" in value or not value.isprintable():
        raise ValueError("must not hold a backslash or a control character")
    return value


def _check_printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not hold a control character")
    return value


Printable = Annotated[str, AfterValidator(_check_printable)]


AETitle = Annotated[str, AfterValidator(_check_ae_title)]
# TOML has real types: a quoted number or true for a port is a mistake to report,
# not to convert.
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Count = Annotated[int, Field(ge=0, strict=True)]
Switch = Annotated[bool, Field(strict=True)]
Seconds = Annotated[float, Field(gt=0, le=3600, strict=True)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalSettings(_Section):
    """Who we are on the network and where we keep our files."""

    ae_title: AETitle = "PACSBRIDGE"
    port: Port = 11112
    data_dir: Annotated[
        Path, AfterValidator(lambda p: Path(_check_printable(str(p))))
    ] = Path("pacsbridge-data")
    database_url: str = ""
    max_pdu: int = Field(default=16384, strict=True, description="0 means unlimited")
    log_level: LogLevel = "WARNING"

    @field_validator("max_pdu")
    @classmethod
    def _check_max_pdu(cls, value: int) -> int:
        # PS3.8 9.3.1: the maximum length received is a 32-bit value; 0 is unlimited.
        if value != 0 and not 4096 <= value <= 0xFFFFFFFF:
            raise ValueError("max_pdu is 0 (unlimited) or between 4096 and 4294967295")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None


class ApiSettings(_Section):
    keys: tuple[str, ...] = ()
    # Enforced while an upload streams: a request over either is refused (413).
    max_upload_bytes: int = Field(default=8 * 1024**3, ge=1024, strict=True)
    max_upload_files: int = Field(default=200, ge=1, le=10_000, strict=True)


SopClassChoice = Literal["secondary-capture", "vl-photographic"]


class _Destination(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    enabled: Switch = True
    timeout: Seconds = 30.0


class DicomDestination(_Destination):
    """A DICOM C-STORE SCP: a PACS, a VNA, a viewer."""

    kind: Literal["dicom"]
    ae_title: AETitle
    host: Printable = Field(min_length=1)
    port: Port
    tls: Switch = False
    storage_commitment: Switch = False
    sop_class: SopClassChoice = "secondary-capture"

    @model_validator(mode="after")
    def _only_what_this_version_does(self) -> DicomDestination:
        # Accepting these and sending without them would be worse than refusing:
        # tls = true must never mean patient data in the clear.
        # TODO: TLS and storage commitment (issue 8), VL Photographic (issue 9).
        if self.tls:
            raise ValueError("tls is not supported by this version yet")
        if self.storage_commitment:
            raise ValueError("storage_commitment is not supported by this version yet")
        if self.sop_class != "secondary-capture":
            raise ValueError(f"sop_class {self.sop_class!r} is not supported yet")
        return self


class DicomWebDestination(_Destination):
    kind: Literal["dicomweb"]
    url: str = Field(min_length=1)
    username: str = ""
    password: str = ""
    token: str = ""
    sop_class: SopClassChoice = "secondary-capture"


class Hl7Destination(_Destination):
    kind: Literal["hl7"]
    host: Printable = Field(min_length=1)
    port: Port
    message_type: Literal["MDM^T02", "ORU^R01"] = "MDM^T02"
    assigning_authority: str = ""
    content: Literal["embedded", "reference"] = "embedded"


class XdsDestination(_Destination):
    kind: Literal["xds"]
    url: str = Field(min_length=1)
    repository_unique_id: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    assigning_authority: str = Field(min_length=1)
    class_code: str = ""
    type_code: str = ""
    format_code: str = ""
    practice_setting_code: str = ""
    facility_type_code: str = ""
    confidentiality_code: str = "N"
    language_code: str = "en-US"


Destination = Annotated[
    DicomDestination | DicomWebDestination | Hl7Destination | XdsDestination,
    Field(discriminator="kind"),
]


class LookupSettings(_Section):
    provider: Literal["worklist", "study", "dicomweb"] = "worklist"
    ae_title: AETitle | None = None
    host: Printable = ""
    port: Port | None = None
    url: str = ""
    # At most a century back: more is a typing mistake, not a search.
    date_range_days: Annotated[int, Field(ge=0, le=36500, strict=True)] = 0
    default_charset: str = "ISO_IR 100"
    max_results: Annotated[int, Field(ge=1, strict=True)] = 200
    timeout: Seconds = 30.0

    @field_validator("default_charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        # PS3.3 C.12.1.1.2 defined terms, as pydicom knows them.
        if value not in python_encoding:
            raise ValueError(
                f"'{value}' is not a DICOM character set term such as "
                "'ISO_IR 100', 'ISO_IR 192', 'GB18030' or 'ISO 2022 IR 87'"
            )
        return value


LongString = Annotated[str, Field(max_length=64), AfterValidator(_check_text)]


class EquipmentSettings(_Section):
    """The General Equipment module of every object (PS3.3 C.7.5.1)."""

    institution: LongString = ""
    department: LongString = ""
    station_name: Annotated[str, Field(max_length=16), AfterValidator(_check_text)] = ""
    manufacturer: LongString = ""
    model: LongString = ""
    serial_number: LongString = ""
    software_version: LongString = ""


class JobsSettings(_Section):
    """How the service's workers retry and hold deliveries, and keep files."""

    max_attempts: int = Field(default=10, ge=1, le=1000, strict=True)
    retry_base_seconds: Annotated[float, Field(gt=0, le=86400, strict=True)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0, le=7 * 86400, strict=True)] = 3600.0
    # A worker that stops renewing its lease (killed, cut off) loses its delivery
    # to another after this long.
    lease_seconds: Annotated[float, Field(ge=5, le=86400, strict=True)] = 300.0
    poll_seconds: Annotated[float, Field(gt=0, le=60, strict=True)] = 1.0
    workers: int = Field(default=2, ge=0, le=64, strict=True)
    # Originals of a job delivered everywhere are removed after this many days.
    retention_days: Annotated[float, Field(ge=0, le=3650, strict=True)] = 7.0


class SeriesSettings(_Section):
    number: int = Field(default=1, ge=0, le=2**31 - 1, strict=True)


class ImageSettings(_Section):
    quality: Annotated[int, Field(strict=True)] | Literal["lossless"] = 90
    max_pixels: Annotated[int, Field(ge=1, strict=True)] = 100_000_000
    max_file_size: Annotated[int, Field(ge=1, strict=True)] = 512 * 1024 * 1024

    @field_validator("quality")
    @classmethod
    def _check_quality(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 100:
            raise ValueError('quality is a number from 1 to 100, or "lossless"')
        return value


# One fragment holds the whole stream, and a fragment's length is 32 bits
# (PS3.5 A.4): objects stay well below 4 GiB.
_LARGEST_OBJECT = 4_000_000_000


class VideoSettings(_Section):
    enabled: Switch = True
    # x264's CRF; 0 would be lossless, which High Profile cannot carry.
    quality: int = Field(default=23, ge=1, le=51, strict=True, description="x264 CRF")
    # x264's speed for size trade-off. On two cores "veryfast" encodes 1080p at
    # about three times the speed of x264's default "medium", for a larger file.
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
        "slower", "veryslow",
    ] = "veryfast"  # fmt: skip
    max_file_size: Annotated[int, Field(ge=1, strict=True)] = 64 * 1024**3
    # Longer videos are cut at key frames into several instances of one series.
    max_object_size: Annotated[
        int, Field(ge=1024 * 1024, le=_LARGEST_OBJECT, strict=True)
    ] = 2_000_000_000


class Settings(_Section):
    """Everything a site configures."""

    local: LocalSettings = LocalSettings()
    server: ServerSettings = ServerSettings()
    api: ApiSettings = ApiSettings()
    destinations: tuple[Destination, ...] = ()
    lookup: LookupSettings = LookupSettings()
    equipment: EquipmentSettings = EquipmentSettings()
    series: SeriesSettings = SeriesSettings()
    image: ImageSettings = ImageSettings()
    video: VideoSettings = VideoSettings()
    jobs: JobsSettings = JobsSettings()

    @model_validator(mode="after")
    def _unique_destination_names(self) -> Settings:
        seen: set[str] = set()
        for dest in self.destinations:
            if dest.name in seen:
                raise ValueError(f"destination name {dest.name!r} is used twice")
            seen.add(dest.name)
        return self

    def destination(self, name: str) -> Destination:
        """The destination called ``name``, or a ConfigError listing the known ones."""
        for dest in self.destinations:
            if dest.name == name:
                return dest
        known = ", ".join(d.name for d in self.destinations) or "none"
        raise ConfigError(f"no destination is named {name!r} (configured: {known})")

    def pick_destinations(self, names: list[str] | None) -> list[Destination]:
        """The named destinations, each once, or all enabled ones when no name is
        given."""
        if names:
            chosen = [self.destination(name) for name in dict.fromkeys(names)]
            disabled = [d.name for d in chosen if not d.enabled]
            if disabled:
                raise ConfigError(
                    f"destination {disabled[0]!r} is disabled (enabled = false)"
                )
            return chosen
        chosen = [d for d in self.destinations if d.enabled]
        if not chosen:
            raise ConfigError("no enabled destination is configured")
        return chosen


def _describe(error: Any) -> str:
    location = ""
    for part in error["loc"]:
        if isinstance(part, str) and (part in ("int", "str") or "[" in part):
            continue  # the branch of a union pydantic tried, not a key of the file
        if isinstance(part, int):
            location += f"[{part}]"
        elif part in ("dicom", "dicomweb", "hl7", "xds"):
            continue  # the discriminator's branch name, not a key of the file
        else:
            location += f".{part}" if location else str(part)
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def find_config(path: Path | None) -> Path | None:
    """The configuration file to read: the one named, ``$PACSBRIDGE_CONFIG``, or
    ``pacsbridge.toml`` in the working folder when it exists."""
    if path is not None:
        return path
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(path: Path | None) -> Settings:
    """Read and check the configuration; defaults only when no file is found."""
    path = find_config(path)
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path)
    _apply_environment(raw)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        where = str(path) if path else "the defaults"
        if os.environ.get("PACSBRIDGE_LOG_LEVEL") or os.environ.get(
            "PACSBRIDGE_API_KEYS"
        ):
            where += " with PACSBRIDGE_* from the environment"
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{where}: {problems}") from None
    base = path.parent if path is not None else Path.cwd()
    return _resolve_paths(settings, base)


_MAX_CONFIG_BYTES = 1024 * 1024


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # Not waiting on a FIFO, not reading a device: a plain file of sane size.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as fh:
            stat = os.fstat(fd)
            if not S_ISREG(stat.st_mode):
                raise ConfigError(f"{path}: the configuration is not a regular file")
            if stat.st_size > _MAX_CONFIG_BYTES:
                raise ConfigError(f"{path}: the configuration file is over 1 MiB")
            text = fh.read(_MAX_CONFIG_BYTES + 1).decode("utf-8")
        return tomllib.loads(text.removeprefix("\ufeff"))  # a BOM is harmless
    except FileNotFoundError:
        raise ConfigError(f"{path}: the configuration file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML (it is not UTF-8 text)") from None


def _apply_environment(raw: dict[str, Any]) -> None:
    level = os.environ.get("PACSBRIDGE_LOG_LEVEL")
    if level:
        raw.setdefault("local", {})["log_level"] = level
    keys = os.environ.get("PACSBRIDGE_API_KEYS")
    if keys:
        raw.setdefault("api", {})["keys"] = [k.strip() for k in keys.split(",") if k]


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    # Relative paths in the file are relative to the file, not to the working folder.
    data_dir = settings.local.data_dir.expanduser()
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    local = settings.local.model_copy(update={"data_dir": data_dir})
    return settings.model_copy(update={"local": local})
