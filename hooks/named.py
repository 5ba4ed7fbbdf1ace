#!/usr/bin/env python3
"""named container: runs named -g and fences it when the agent stops renewing."""

import sys

from bind_ha.supervisor import main

sys.exit(main())
