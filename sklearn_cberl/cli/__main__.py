"""``python -m sklearn_cberl.cli``: the ``cberl`` command."""

import sys

from . import main

sys.exit(main())
