"""Errors that reach users: one line saying what was wrong and what to do."""


class MoDAError(Exception):
    """A problem with the user's input, files or environment; the CLI prints it as one line and exits 2."""


class WeightsNotFoundError(MoDAError):
    """Model weights are neither in the given directory nor downloadable."""
