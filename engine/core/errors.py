"""Errors whose message a user can act on. Anything else is a bug and is logged in full."""


class SeedlabError(Exception):
    """An error with a message meant for the user (shown as is, never as a traceback)."""


class DatasetError(SeedlabError):
    """An upload or dataset that cannot be used; nothing of it was stored."""


class ConfigError(SeedlabError):
    """A run configuration with an invalid value; the message names the field."""


class TrainingError(SeedlabError):
    """Training could not go on (NaN loss, missing files, …)."""
