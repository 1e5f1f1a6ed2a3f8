"""``python -m enerdatx`` runs the command line."""

import sys

from enerdatx.cli import main

sys.exit(main())
