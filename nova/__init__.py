"""Command-line wiring of the Nova Reliability Suite (`nova`)."""
