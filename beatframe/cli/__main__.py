"""``python -m beatframe.cli``: the same as the ``beatframe`` command."""

import sys

from beatframe.cli.main import main

sys.exit(main())
