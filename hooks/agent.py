#!/usr/bin/env python3
"""Agent container: the Lease election and live BIND role switching.

/healthz is served before the heavy imports (the Kubernetes client takes over a
second to load), so the kubelet's first startup probe finds the port open.
"""

import os
import sys

from bind_ha import settings
from bind_ha.health import STARTING_AGENT, serve_starting

try:
    early = settings.load(os.environ)
except settings.SettingsError:
    routes = None  # agent() names the bad variable and exits
else:
    routes = serve_starting(early.health_address, early.health_port, STARTING_AGENT)

from bind_ha.entrypoints import agent  # after the health server: see above

sys.exit(agent(routes))
