"""Runbooks: one per alert the suite can fire, with diagnostics `nova runbooks run` executes."""
