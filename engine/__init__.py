"""SonicVerse engine: listens to audio regions and says what it hears.

Nothing is imported eagerly here: heavy modules (torch, transformers) load inside the
functions that need them.
"""

import os

__version__ = "0.1.0"

# Nothing downloads at run time: the Hugging Face libraries (and bitsandbytes, which otherwise
# looks for kernels on the Hub) stay offline unless the user says otherwise in the environment.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
