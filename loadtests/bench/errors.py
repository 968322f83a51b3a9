"""The benchmark's one error type: the command line prints its message as one line."""


class BenchError(RuntimeError):
    """The benchmark could not measure; the message says what to fix."""
