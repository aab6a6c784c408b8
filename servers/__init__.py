"""The diagnostic MCP servers: one package per area (logic, models, a thin FastMCP server);
the list of areas is :mod:`servers.registry`."""
