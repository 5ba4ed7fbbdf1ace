#!/usr/bin/env python3
"""Agent container: the Lease election and live BIND role switching."""

import sys

from bind_ha.entrypoints import agent

sys.exit(agent())
