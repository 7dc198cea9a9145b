"""expect: error (whole exercise) -- sys.exit(0) at import time."""
import sys

sys.exit(0)
