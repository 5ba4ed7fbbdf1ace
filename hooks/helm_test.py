#!/usr/bin/env python3
"""`helm test` pod: every zone answers SOA with AA; a signed update goes through the primary."""

import sys

from bind_ha.selftest import main

sys.exit(main())
