"""Probes the engine itself sends (tests define their own)."""


def imported(module) -> bool:
    """Importing the submission is the whole probe: it fails exactly when the import fails."""
    return True
