"""Tracing, metrics and logging shared by the services; knows nothing of payments."""
