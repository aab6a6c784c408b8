"""Browser capture: a headless Chromium watching the frontend (``capture``), what its tools
do (``logic``), and the thin MCP server over them (``server``)."""
