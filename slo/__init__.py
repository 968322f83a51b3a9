"""The SLO engine: specs, Prometheus rules, burn-rate math, dashboards and SLO reports."""
