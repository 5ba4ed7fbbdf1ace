"""Where the pinned tools installed by `make setup` live."""

from __future__ import annotations

import os
import pathlib
import shutil

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "bind-ha"
BIN = CACHE / "bin"
SCHEMAS = CACHE / "schemas"


def versions() -> dict[str, str]:
    """The pins in .ci/versions.env, as a dict."""
    pins: dict[str, str] = {}
    for raw in (REPO / ".ci" / "versions.env").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value.strip().strip('"')
    return pins


class MissingToolError(RuntimeError):
    """A tool `make setup` should have installed is absent: a setup failure."""


def tool(name: str) -> str:
    """Absolute path of a pinned tool; the cache wins over anything on PATH."""
    cached = BIN / name
    if cached.exists():
        return str(cached)
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(f"{name} is not installed: run `make setup` (looked in {BIN} and PATH)")
    return found


def path_with_tools() -> str:
    """PATH with the pinned tools first (the host's kubectl is not the pinned one)."""
    return f"{BIN}:{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
