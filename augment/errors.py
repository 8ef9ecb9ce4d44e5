"""User-facing errors. The CLI turns each into one red line (no traceback unless AUGMENT_DEBUG=1)."""

from __future__ import annotations


class AugmentError(Exception):
    """An expected failure with a message a user can act on. Exit code 1."""

    exit_code = 1


class ConfigError(AugmentError):
    """Bad flags, config file or prompt file. Exit code 2 (bad usage)."""

    exit_code = 2


class BackendError(AugmentError):
    """One model call failed.

    `retryable` failures (429, 5xx, timeouts, dropped connections, unreadable bodies) are retried
    by the runner with backoff, waiting at least `retry_after` seconds when the server said so;
    `rate_limited` (a 429) and `timed_out` (no reply within request_timeout) also tell the runner to
    lower its concurrency for a while. Others are recorded as the request's failure and the run
    goes on; twenty in a row stop it (a server down or misconfigured), except those that are
    `of_request`: this request as it is cannot be answered (its prompt is too long for the context).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        rate_limited: bool = False,
        timed_out: bool = False,
        of_request: bool = False,
    ):
        super().__init__(message)
        self.of_request = of_request
        self.retryable = retryable
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.timed_out = timed_out


class FatalBackendError(AugmentError):
    """A failure that every further request would repeat (bad key, unknown model, wrong URL): stop the run."""


class ParseError(AugmentError):
    """A model response could not be parsed into records; the runner records the reason and goes on.

    `reask=False`: asking again would fail the same way (a reply cut off in the model's reasoning
    by max_tokens), so the runner does not pay for another sample."""

    def __init__(self, message: str, *, reask: bool = True):
        super().__init__(message)
        self.reask = reask


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret replaced, for anything that may reach a log or a file."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
