"""Follicle: an open evidence engine for JAK-inhibitor therapy in alopecia areata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("follicle")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
