"""Predictive alerting (scikit-learn over the service metrics), its evaluation against the burn-rate pages, and the pager."""
