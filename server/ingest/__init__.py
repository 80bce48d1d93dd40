"""Ingestion: walk files, chunk them per domain, and upsert them incrementally per tenant."""
