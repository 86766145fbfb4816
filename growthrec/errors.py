"""The exceptions growthrec raises for user mistakes: one root, a few specific kinds."""

from __future__ import annotations

__all__ = [
    "DataError",
    "GrowthrecError",
    "ModelFileError",
    "ParameterError",
    "PluginError",
    "UnknownBackendError",
    "UnknownIdError",
]


class GrowthrecError(Exception):
    """Root of every error growthrec raises on purpose; the message is one line for a person."""

    #: Exit status of the command line for this kind of error (1: data, 2: usage).
    exit_code = 1


class ParameterError(GrowthrecError, ValueError):
    """An argument or backend parameter has a value it cannot take."""

    exit_code = 2


class UnknownBackendError(ParameterError, LookupError):
    """No registered backend has the requested name."""


class PluginError(GrowthrecError):
    """A plugin is broken: duplicate backend name, misspelt hook, bad registration."""


class DataError(GrowthrecError, ValueError):
    """Input data (a file, a column, a row, an array) is missing or invalid."""


class UnknownIdError(DataError, LookupError):
    """A user or item id is not known to the model."""


class ModelFileError(GrowthrecError):
    """A model file is missing, corrupt, of another format or of an unsupported version."""
