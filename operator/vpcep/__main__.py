"""`python -m vpcep` runs the operator (same as `vpcep-operator`)."""

import sys

from vpcep.main import main

sys.exit(main())
