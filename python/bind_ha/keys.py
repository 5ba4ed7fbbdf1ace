"""TSIG keys (from the chart's Secret) and the pod-local rndc key."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bind_ha.settings import Settings

TRANSFER_SECRET_FILE = "transfer-secret"
UPDATE_SECRET_FILE = "update-secret"
RNDC_KEY_NAME = "bind-ha-rndc"


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str


@dataclass(frozen=True)
class Keys:
    """The transfer and update TSIG keys, and the name of the pod-local rndc key."""

    transfer: TsigKey
    update: TsigKey
    rndc: TsigKey


class SecretError(ValueError):
    """A TSIG secret is missing or not base64; the message names the file."""


def read_secret(path: Path) -> str:
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        raise SecretError(f"TSIG secret {path} is missing (is the tsig Secret mounted?)") from None
    try:
        if len(base64.b64decode(secret, validate=True)) < 16:
            raise SecretError(f"TSIG secret {path} is shorter than 16 bytes")
    except binascii.Error:
        raise SecretError(f"TSIG secret {path} is not valid base64") from None
    return secret


def load_keys(settings: Settings) -> Keys:
    """The TSIG keys from the mounted Secret, and the rndc key (made on first use)."""
    transfer = TsigKey(
        settings.transfer_key_name,
        settings.tsig_algorithm,
        read_secret(settings.tsig_dir / TRANSFER_SECRET_FILE),
    )
    update = TsigKey(
        settings.update_key_name, settings.tsig_algorithm, read_secret(settings.tsig_dir / UPDATE_SECRET_FILE)
    )
    return Keys(transfer=transfer, update=update, rndc=ensure_rndc_key(settings))


def private_write(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(scratch, path)


def rndc_conf_path(settings: Settings) -> Path:
    return settings.run_dir / "rndc.conf"


def ensure_rndc_key(settings: Settings) -> TsigKey:
    """The rndc key lives only in this pod's run directory; made once, then reused."""
    key_file = settings.run_dir / "rndc.secret"
    if not key_file.exists():
        private_write(key_file, base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    key = TsigKey(RNDC_KEY_NAME, "hmac-sha256", key_file.read_text().strip())
    private_write(
        rndc_conf_path(settings),
        (
            f'key "{key.name}" {{ algorithm {key.algorithm}; secret "{key.secret}"; }};\n'
            f'options {{ default-key "{key.name}"; default-server {settings.control_address};'
            f" default-port {settings.control_port}; default-source-address {settings.control_address}; }};\n"
        ),
    )
    return key
