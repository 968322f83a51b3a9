"""Predictive alerting (scikit-learn over the service metrics), its evaluation against the
burn-rate pages, the NAB-scored anomaly detector, and the pager."""
