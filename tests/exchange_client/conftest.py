"""The exchange client's own tests import it from this repository's client/ folder, so they test
this code with whatever nbgrader the test suite's Python has (0.8.2 or newer)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'client'))
