"""Errors whose message a user can act on. Anything else is a bug and is logged in full."""

from __future__ import annotations

from collections.abc import Sequence


class SeedlabError(Exception):
    """An error with a message meant for the user (shown as is, never as a traceback)."""


class DatasetError(SeedlabError):
    """An upload or dataset that cannot be used; nothing of it was stored."""


class ConfigError(SeedlabError):
    """A run configuration with an invalid value; the message names the field.

    `problems` holds one engine.core.config.ConfigProblem per invalid value when the error
    comes from validating a RunConfig (the form shows each beside its field).
    """

    def __init__(self, message: str, problems: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class TrainingError(SeedlabError):
    """Training could not go on (NaN loss, missing files, …)."""
