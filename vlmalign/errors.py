"""Errors for user mistakes. They are printed as one clear paragraph, not a library traceback."""


class VlmalignError(Exception):
    """Base for mistakes a user can fix (config, data, files)."""


class ConfigError(VlmalignError):
    """A config key has a value that cannot work; the message names the key."""


class DataError(VlmalignError):
    """A data row or file is unusable; the message names the file/row/sample."""
