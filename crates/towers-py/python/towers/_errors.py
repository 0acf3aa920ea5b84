"""The exceptions of towers: one class per kind of failure, all subclasses of TowersError."""

__all__ = [
    "TowersError",
    "InputError",
    "ConfigError",
    "ModelError",
    "FileError",
    "BusyError",
    "InternalError",
    "ColdStartWarning",
]


class TowersError(Exception):
    """Any error of towers."""


class InputError(TowersError, ValueError):
    """Bad input data: a malformed file (the message names file, line and field), a table
    without a user or item column, a missing value, an unknown id."""


class ConfigError(TowersError, ValueError):
    """A bad option, configuration or request (an unknown option name, a value out of range,
    a query the model cannot answer)."""


class ModelError(TowersError):
    """A missing, corrupt or incompatible model directory."""


class FileError(TowersError, OSError):
    """A file could not be read or written, or a download failed."""


class BusyError(FileError):
    """Another process is writing the model directory (one writer at a time), or the directory
    changed on disk since the model was loaded from it."""


class InternalError(TowersError, RuntimeError):
    """A bug in towers: please report it."""


class ColdStartWarning(UserWarning):
    """A query the model does not know (a new user): the most popular items were returned."""


for _cls in (TowersError, InputError, ConfigError, ModelError, FileError, BusyError, InternalError, ColdStartWarning):
    _cls.__module__ = "towers"
