#!/usr/bin/env python3
"""named readiness probe: every configured zone answers SOA with AA."""

import sys

from bind_ha.probe import main

sys.exit(main())
