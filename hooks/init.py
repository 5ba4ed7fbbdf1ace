#!/usr/bin/env python3
"""Init container: keys, directories and a safe (secondary) first named.conf."""

import sys

from bind_ha.entrypoints import init

sys.exit(init())
