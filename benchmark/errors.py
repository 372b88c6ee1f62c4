"""One root error so the CLI can turn every expected failure into a single clear line."""

from __future__ import annotations

__all__ = ["GenrebenchError", "DataError", "ConfigError", "SearchSpaceError"]


class GenrebenchError(Exception):
    """Root of every error genrebench raises on purpose (bad input, bad config, missing data)."""


class DataError(GenrebenchError):
    """The dataset folder or one of its files is missing or malformed."""


class ConfigError(GenrebenchError):
    """A benchmark config names something unknown or holds an invalid value."""


class SearchSpaceError(ConfigError):
    """A search_spaces/<family>.yaml file is invalid (names the file and the key)."""
