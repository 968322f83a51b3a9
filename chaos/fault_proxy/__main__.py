"""`python -m chaos.fault_proxy --port N --proxy NAME=UPSTREAM ...`."""

from chaos.fault_proxy.server import main

raise SystemExit(main())
