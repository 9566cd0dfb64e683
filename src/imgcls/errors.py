"""Errors a user can fix; each message says what is wrong and how to fix it."""


class ImgclsError(Exception):
    """Base class: the run stops with this message instead of a stack trace."""


class ConfigError(ImgclsError):
    """A configuration value is invalid."""


class DataError(ImgclsError):
    """The image folders cannot be used as given."""


class WeightsError(ImgclsError):
    """Backbone weights cannot be obtained or do not fit the architecture."""


class DiskFullError(ImgclsError):
    """The disk filled up while the run wrote its folder; it can be resumed once space is freed."""
