"""`python -m metanas`: the `metanas` command line."""

import sys

from metanas.cli import main

sys.exit(main())
