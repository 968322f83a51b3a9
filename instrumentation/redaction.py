"""Credentials never leave the process: the blanking applied to log lines and recorded exceptions.

Nothing in the suite writes a token into a message on purpose; this is the net for
the ones that slip in (an exception quoting a header, a debug line).
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
_AUTHORIZATION = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!\[redacted\])[^\s\"',;]+")


def redact(text: str) -> str:
    """`text` with `Bearer <credential>` and the value after `Authorization:` blanked."""
    return _AUTHORIZATION.sub(r"\1" + REDACTED, _BEARER.sub(REDACTED, text))
