#!/usr/bin/env python3
"""named container: runs named -g and fences it when the agent stops renewing."""

import sys

from bind_ha.entrypoints import named

sys.exit(named())
