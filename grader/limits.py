"""Resource limits applied inside a sandbox process before any submission code runs."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 60.0             # RLIMIT_CPU: a busy loop dies even if the wall-clock timer fails
    address_space_gb: float = 16.0  # RLIMIT_AS: a memory bomb gets MemoryError, not the machine
    file_size_mb: float = 64.0      # RLIMIT_FSIZE: no filling the disk
    open_files: int = 256           # RLIMIT_NOFILE


def apply_limits(limits: Limits) -> None:
    for which, value in ((resource.RLIMIT_CPU, int(limits.cpu_s) + 1),
                         (resource.RLIMIT_AS, int(limits.address_space_gb * 2**30)),
                         (resource.RLIMIT_FSIZE, int(limits.file_size_mb * 2**20)),
                         (resource.RLIMIT_NOFILE, limits.open_files)):
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
