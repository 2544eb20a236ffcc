"""The configuration file: every key checked, every mistake named with its file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pacsbridge.config import (
    DicomDestination,
    DicomWebDestination,
    Hl7Destination,
    XdsDestination,
    load_settings,
)
from pacsbridge.errors import ConfigError

FULL = """
[local]
ae_title = "PACSBRIDGE"
port = 11113
data_dir = "var/pacsbridge"
database_url = "sqlite:///pacsbridge.db"
max_pdu = 65536
log_level = "info"

[server]
host = "0.0.0.0"
port = 8443
tls_cert = "/etc/pacsbridge/cert.pem"
tls_key = "/etc/pacsbridge/key.pem"

[api]
keys = ["integration-key"]

[[destinations]]
name = "pacs"
kind = "dicom"
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4242
tls = false
storage_commitment = false
sop_class = "secondary-capture"

[[destinations]]
name = "vna"
kind = "dicomweb"
url = "http://127.0.0.1:8042/dicom-web"
username = "bridge"
password = "secret"
enabled = false

[[destinations]]
name = "ehr"
kind = "hl7"
host = "127.0.0.1"
port = 2575
message_type = "ORU^R01"
assigning_authority = "HOSP"
content = "reference"

[[destinations]]
name = "registry"
kind = "xds"
url = "http://127.0.0.1:8080/xds"
repository_unique_id = "1.2.3"
source_id = "1.2.3.4"
assigning_authority = "1.2.3.5"
class_code = "IMG"

[lookup]
provider = "study"
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4242
date_range_days = 7
default_charset = "ISO_IR 192"
max_results = 50

[equipment]
institution = "General Hospital"
department = "Dermatology"
station_name = "WARD7"
manufacturer = "Acme"
model = "Slate"
serial_number = "SN-1"
software_version = "1.0"

[series]
number = 900

[image]
quality = 85
max_pixels = 50000000

[video]
enabled = false
quality = 28
"""


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PACSBRIDGE_CONFIG", "PACSBRIDGE_LOG_LEVEL", "PACSBRIDGE_API_KEYS"):
        monkeypatch.delenv(name, raising=False)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pacsbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _about(path: Path, problem: str) -> str:
    return re.escape(str(path)) + ": .*" + problem


def test_full_file_with_every_section_loads(tmp_path: Path) -> None:
    path = _config(tmp_path, FULL)

    settings = load_settings(path)

    assert settings.local.port == 11113
    assert settings.local.log_level == "INFO"
    assert settings.local.data_dir == tmp_path / "var" / "pacsbridge"
    assert settings.server.port == 8443
    assert settings.api.keys == ("integration-key",)
    kinds = [type(d) for d in settings.destinations]
    assert kinds == [
        DicomDestination,
        DicomWebDestination,
        Hl7Destination,
        XdsDestination,
    ]
    assert settings.lookup.provider == "study"
    assert settings.equipment.station_name == "WARD7"
    assert settings.series.number == 900
    assert (settings.image.quality, settings.image.max_pixels) == (85, 50_000_000)
    assert (settings.video.enabled, settings.video.quality) == (False, 28)
    assert [d.name for d in settings.pick_destinations(None)] == [
        "pacs",
        "ehr",
        "registry",
    ]


def test_image_quality_may_be_lossless(tmp_path: Path) -> None:
    path = _config(tmp_path, '[image]\nquality = "lossless"\n')

    assert load_settings(path).image.quality == "lossless"


def test_unknown_key_is_named_with_its_file(tmp_path: Path) -> None:
    path = _config(tmp_path, '[local]\nae_titel = "X"\n')

    with pytest.raises(ConfigError, match=_about(path, "local.ae_titel: unknown key")):
        load_settings(path)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path, "[imaging]\nquality = 80\n")

    with pytest.raises(ConfigError, match=_about(path, "imaging: unknown key")):
        load_settings(path)


def test_port_out_of_range_names_the_destination(tmp_path: Path) -> None:
    text = (
        '[[destinations]]\nname = "pacs"\nkind = "dicom"\nae_title = "PACS"\n'
        'host = "127.0.0.1"\nport = 70000\n'
    )
    path = _config(tmp_path, text)

    with pytest.raises(ConfigError, match=_about(path, r"destinations\[0\]\.port")):
        load_settings(path)


def test_unknown_key_in_a_destination_is_named(tmp_path: Path) -> None:
    text = (
        '[[destinations]]\nname = "pacs"\nkind = "dicom"\nae_title = "PACS"\n'
        'host = "127.0.0.1"\nport = 104\nretries = 3\n'
    )
    path = _config(tmp_path, text)

    with pytest.raises(
        ConfigError, match=_about(path, r"destinations\[0\]\.retries: unknown key")
    ):
        load_settings(path)


@pytest.mark.parametrize("quality", ["0", "101", '"lossy"', "-5"])
def test_bad_image_quality_is_refused(tmp_path: Path, quality: str) -> None:
    path = _config(tmp_path, f"[image]\nquality = {quality}\n")

    with pytest.raises(ConfigError, match=_about(path, r"image\.quality")):
        load_settings(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [("quality", "0"), ("quality", "52"), ("preset", '"placebo"'),
     ("max_object_size", "1000"), ("max_object_size", "5000000000")],
)  # fmt: skip
def test_bad_video_settings_are_refused(tmp_path: Path, key: str, value: str) -> None:
    # quality 0 would be lossless, which High Profile cannot carry; an object
    # larger than 4 GB cannot be one fragment.
    path = _config(tmp_path, f"[video]\n{key} = {value}\n")

    with pytest.raises(ConfigError, match=_about(path, rf"video\.{key}")):
        load_settings(path)


def test_too_long_ae_title_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, '[local]\nae_title = "A-VERY-LONG-AE-TITLE"\n')

    with pytest.raises(ConfigError, match=_about(path, "local.ae_title: .*16")):
        load_settings(path)


def test_destination_names_are_unique(tmp_path: Path) -> None:
    one = '[[destinations]]\nname = "pacs"\nkind = "dicomweb"\nurl = "http://x"\n'
    path = _config(tmp_path, one + one)

    with pytest.raises(ConfigError, match=_about(path, "'pacs' is used twice")):
        load_settings(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError, match=_about(path, "does not exist")):
        load_settings(path)


def test_malformed_toml_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path, "[local\nport = 1\n")

    with pytest.raises(ConfigError, match=_about(path, "not valid TOML")):
        load_settings(path)


def test_environment_sets_log_level_and_api_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACSBRIDGE_LOG_LEVEL", "debug")
    monkeypatch.setenv("PACSBRIDGE_API_KEYS", "one, two")

    settings = load_settings(_config(tmp_path, ""))

    assert settings.local.log_level == "DEBUG"
    assert settings.api.keys == ("one", "two")


def test_unknown_destination_name_lists_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, FULL))

    with pytest.raises(ConfigError, match=r"'lab'.*pacs, vna, ehr, registry"):
        settings.destination("lab")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("port = true", r"destinations\[0\]\.port"),
        ('port = "104"', r"destinations\[0\]\.port"),
        ("port = 104.0", r"destinations\[0\]\.port"),
        ('port = 104\nenabled = "yes"', r"destinations\[0\]\.enabled"),
        ("port = 104\ntimeout = inf", r"destinations\[0\]\.timeout"),
        ("port = 104\ntimeout = 1e12", r"destinations\[0\]\.timeout"),
    ],
)
def test_values_of_the_wrong_type_are_refused_not_converted(
    tmp_path: Path, line: str, key: str
) -> None:
    text = (
        '[[destinations]]\nname = "pacs"\nkind = "dicom"\nae_title = "PACS"\n'
        f'host = "127.0.0.1"\n{line}\n'
    )
    path = _config(tmp_path, text)

    with pytest.raises(ConfigError, match=_about(path, key)):
        load_settings(path)


def test_quality_true_is_not_taken_for_one(tmp_path: Path) -> None:
    path = _config(tmp_path, "[image]\nquality = true\n")

    with pytest.raises(ConfigError, match=_about(path, r"image\.quality")):
        load_settings(path)


@pytest.mark.parametrize("value", ['"A\\\\B"', '"Ward\\u0007"'])
def test_equipment_text_with_a_backslash_or_control_is_refused(
    tmp_path: Path, value: str
) -> None:
    path = _config(tmp_path, f"[equipment]\ninstitution = {value}\n")

    with pytest.raises(ConfigError, match=_about(path, r"equipment\.institution")):
        load_settings(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pacsbridge.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")

    with pytest.raises(ConfigError, match=_about(path, "not UTF-8")):
        load_settings(path)


def test_a_fifo_as_configuration_is_refused_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "pacsbridge.toml"
    os.mkfifo(path)

    with pytest.raises(ConfigError, match=_about(path, "not a regular file")):
        load_settings(path)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pacsbridge.toml"
    path.write_bytes(b"\xef\xbb\xbf[series]\nnumber = 7\n")

    assert load_settings(path).series.number == 7


def test_a_host_with_a_nul_is_refused(tmp_path: Path) -> None:
    text = (
        '[[destinations]]\nname = "pacs"\nkind = "dicom"\nae_title = "PACS"\n'
        'host = "127.0.0.1\\u0000"\nport = 104\n'
    )
    path = _config(tmp_path, text)

    with pytest.raises(ConfigError, match=_about(path, r"destinations\[0\]\.host")):
        load_settings(path)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("tls = true", "tls is not supported"),
        ("storage_commitment = true", "storage_commitment is not supported"),
        ('sop_class = "vl-photographic"', "sop_class 'vl-photographic' is not"),
    ],
)
def test_destination_features_not_built_yet_are_refused_not_ignored(
    tmp_path: Path, line: str, problem: str
) -> None:
    text = (
        '[[destinations]]\nname = "pacs"\nkind = "dicom"\nae_title = "PACS"\n'
        f'host = "127.0.0.1"\nport = 104\n{line}\n'
    )
    path = _config(tmp_path, text)

    with pytest.raises(ConfigError, match=_about(path, problem)):
        load_settings(path)


def test_a_disabled_destination_named_with_to_is_refused(tmp_path: Path) -> None:
    text = (
        '[[destinations]]\nname = "off"\nkind = "dicom"\nae_title = "PACS"\n'
        'host = "127.0.0.1"\nport = 104\nenabled = false\n'
    )
    settings = load_settings(_config(tmp_path, text))

    with pytest.raises(ConfigError, match="destination 'off' is disabled"):
        settings.pick_destinations(["off"])
