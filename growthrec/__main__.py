"""``python -m growthrec``: the same as the ``growthrec`` command."""

import sys

from growthrec.cli.main import main

sys.exit(main())
