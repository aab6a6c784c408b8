"""dev3000 package.

Importing it leaves pydantic's plugins off unless the environment says otherwise
(``PYDANTIC_DISABLE_PLUGINS``): the only one installed is logfire's, which nothing here uses
(observability is set up explicitly, see ``guilde_core.observability``) and whose loading on
the first model class cost every ``dev3000`` command about half a second at start.
"""

import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
