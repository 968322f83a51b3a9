"""Typed errors of the runbooks package; `str()` of each is the one-line reason the command line prints."""

from __future__ import annotations


class RunbookError(Exception):
    """A runbook, a rule file or an alert name the runbooks tools cannot work with."""


class UnknownAlertError(RunbookError):
    """`nova runbooks run` was given an alert (or runbook) name that no runbook answers to."""
