"""One reader per spec format (Sloth, Sloth on Kubernetes, OpenSLO, Pyrra), each into `slo.model`."""
