"""retrieval-mcp: hybrid retrieval over Qdrant for MCP agents."""

__version__ = "0.1.0"
