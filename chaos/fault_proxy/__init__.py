"""A Toxiproxy-compatible TCP fault proxy: named loopback proxies, their toxics, Toxiproxy's HTTP API.

Toxiproxy's server is a Go binary the suite cannot install, so this is its behaviour in asyncio:
`python -m chaos.fault_proxy` (started by `nova serve --fault-proxy`) serves the API, and
Toxiproxy's clients and chaostoolkit-toxiproxy drive it unchanged.
"""

from chaos.fault_proxy.toxics import STREAMS, TOXIC_TYPES

DEFAULT_API_PORT = 8474

__all__ = ["DEFAULT_API_PORT", "STREAMS", "TOXIC_TYPES"]
