"""Load tests: Locust users and shapes, the SLO gate, capacity search, benchmarks."""
