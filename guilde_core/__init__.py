"""guilde_core: configuration, resilience, redaction and errors shared by every part.

Importing it leaves pydantic's plugins off unless the environment says otherwise
(``PYDANTIC_DISABLE_PLUGINS``): the only one installed is logfire's, which nothing here uses
(observability is set up explicitly, see ``guilde_core.observability``) and whose loading on
the first model class cost every ``dev3000`` command about half a second at start. Every
package imports this one before it defines a model, so every entry point gets it.
"""

import os
from importlib.metadata import PackageNotFoundError, version

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

try:
    __version__ = version("guilde-diag")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
