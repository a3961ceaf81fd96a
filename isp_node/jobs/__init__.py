"""Series assembly, the persistent job queue and the worker processes."""
