#!/usr/bin/env python3
"""named container: runs named -g and fences it when the agent stops renewing.

Its probes are served before the heavy imports (dnspython, the supervisor), so
the kubelet's first startup probe finds the port open.
"""

import os
import sys

from bind_ha import settings
from bind_ha.health import STARTING_NAMED, serve_starting

try:
    early = settings.load(os.environ)
except settings.SettingsError:
    routes = None  # main() names the bad variable and exits
else:
    routes = serve_starting(early.health_address, early.probe_port, STARTING_NAMED)

from bind_ha.supervisor import main  # after the probes' server: see above

sys.exit(main(routes))
