"""Sample corpora for `retrieval-mcp demo` and the per-domain ingest bench: data, not code.

``<domain>/corpus/`` holds third-party files kept byte-identical to their sources (each domain's
README names every file's origin and licence), ``<domain>/queries.jsonl`` the demo's queries. The
product reads them through ``importlib.resources`` (server/demo.py); nothing here is imported or
run — the Python files under ``code/corpus`` are sample text for the code chunkers.
"""
