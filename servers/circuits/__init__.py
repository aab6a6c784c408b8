"""The circuits diagnostic area: logic (plain async functions) and its thin MCP server."""
