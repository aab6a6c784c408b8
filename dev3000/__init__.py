"""dev3000: the debug server — HTTP API, aggregate MCP, timeline, supervisor, doctor."""
