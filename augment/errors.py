"""User-facing errors. The CLI turns each into one red line (no traceback unless AUGMENT_DEBUG=1)."""


class AugmentError(Exception):
    """An expected failure with a message a user can act on. Exit code 1."""

    exit_code = 1


class ConfigError(AugmentError):
    """Bad flags, config file or prompt file. Exit code 2 (bad usage)."""

    exit_code = 2


class BackendError(AugmentError):
    """A model call failed. `retryable` failures are retried by the runner."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class ParseError(AugmentError):
    """A model response could not be parsed into records; the runner records the reason and goes on."""
