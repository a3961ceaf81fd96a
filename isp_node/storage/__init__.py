"""Durable object storage and the SQLite index of everything the node holds."""
