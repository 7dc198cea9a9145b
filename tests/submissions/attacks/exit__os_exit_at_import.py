"""Exit trick: os._exit(0) while the module is being imported (a clean exit status, no exception)."""
import os as _os

_os._exit(0)
