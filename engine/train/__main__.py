"""``python -m engine.train`` / ``accelerate launch -m engine.train``."""

import sys

from engine.train.main import main

sys.exit(main())
