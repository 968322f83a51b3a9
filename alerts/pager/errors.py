"""Typed errors of the pager; the command line and the HTTP receiver turn each into one line."""

from __future__ import annotations


class PagerError(Exception):
    """Anything the pager refuses to do; `str()` is the one-line reason."""


class PayloadError(PagerError):
    """A webhook body that is not an Alertmanager version 4 notification; `code` is the problem's stable code."""

    def __init__(self, message: str, code: str = "invalid_payload") -> None:
        super().__init__(message)
        self.code = code


class DeliveryError(PagerError):
    """A destination did not take a page (unreachable, refused, not writable)."""
