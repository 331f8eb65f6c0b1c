"""``python -m spire_oidc`` runs the command-line interface."""

import sys

from spire_oidc.cli import main

sys.exit(main())
