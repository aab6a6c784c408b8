"""guilde_core: configuration, resilience, redaction and errors shared by every part."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("guilde-diag")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
