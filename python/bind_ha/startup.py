"""What every entry point does first: read the settings and set up logging.

Kept free of the Kubernetes client so that the probes, which run every few
seconds, start quickly.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from bind_ha import settings as settings_module
from bind_ha.bind import Bind
from bind_ha.keys import rndc_conf_path
from bind_ha.settings import Settings, SettingsError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def setup_logging(log_format: str, log_level: str, component: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {component} %(levelname)s %(message)s"))
    level = logging.DEBUG if log_level == "debug" else logging.INFO
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def load_settings(component: str) -> Settings | None:
    """The settings, or None after printing which variable is wrong (exit status 2)."""
    try:
        loaded = settings_module.load(os.environ)
    except SettingsError as error:
        print(f"bind-ha {component}: invalid configuration: {error}", file=sys.stderr)
        return None
    setup_logging(loaded.log_format, loaded.log_level, component)
    return loaded


def local_bind(settings: Settings) -> Bind:
    """This pod's named, through rndc and DNS on its local addresses."""
    return Bind(rndc_conf_path(settings), settings.local_dns_address, settings.dns_port)
