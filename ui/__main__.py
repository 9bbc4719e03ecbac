"""``python -m ui``: the Qt panel (the ``sonicverse-panel`` console script)."""

from ui.app import main

raise SystemExit(main())
