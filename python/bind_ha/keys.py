"""TSIG keys (from the chart's Secret) and the pod-local rndc key."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from bind_ha.settings import Settings

TRANSFER_SECRET_FILE = "transfer-secret"
UPDATE_SECRET_FILE = "update-secret"
RNDC_KEY_NAME = "bind-ha-rndc"
# RFC 2104 (and BIND's tsig-keygen): a key is at least as long as the hash's output.
MIN_SECRET_BYTES = {"hmac-sha224": 28, "hmac-sha256": 32, "hmac-sha384": 48, "hmac-sha512": 64}
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


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
    clients: tuple[TsigKey, ...] = ()  # per-client keys (settings.tsig_clients), same order


class SecretError(ValueError):
    """A TSIG secret is missing or not base64; the message names the file."""


def check_secret(secret: str, algorithm: str, where: str) -> str:
    """A TSIG secret as BIND's `secret` takes it: base64 of at least the hash's length in bytes.
    (Only base64 characters reach named.conf, so a secret cannot break out of its quotes.)"""
    minimum = MIN_SECRET_BYTES[algorithm]
    try:
        if len(secret) > 4096 or not BASE64.fullmatch(secret):
            raise binascii.Error
        decoded = base64.b64decode(secret, validate=True)
    except binascii.Error:
        raise SecretError(f"TSIG secret {where} is not valid base64") from None
    if len(decoded) < minimum:
        raise SecretError(
            f"TSIG secret {where} is shorter than {minimum} bytes (the {algorithm} hash length); "
            "make one with `openssl rand -base64 64`"
        )
    return secret


def read_secret(path: Path, algorithm: str = "hmac-sha256") -> str:
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        raise SecretError(f"TSIG secret {path} is missing (is the tsig Secret mounted?)") from None
    except (OSError, UnicodeDecodeError):
        raise SecretError(f"TSIG secret {path} cannot be read") from None
    return check_secret(secret, algorithm, str(path))


def load_keys(settings: Settings) -> Keys:
    """The TSIG keys from the mounted Secret, and the rndc key (made on first use)."""
    algorithm = settings.tsig_algorithm

    def key(name: str, file_name: str) -> TsigKey:
        return TsigKey(name, algorithm, read_secret(settings.tsig_dir / file_name, algorithm))

    return Keys(
        transfer=key(settings.transfer_key_name, TRANSFER_SECRET_FILE),
        update=key(settings.update_key_name, UPDATE_SECRET_FILE),
        rndc=ensure_rndc_key(settings),
        clients=tuple(key(client.name, client.secret_file) for client in settings.tsig_clients),
    )


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
