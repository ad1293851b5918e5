"""The operator's error tree: Kubernetes API failures with their retry policy attached.

    OperatorError
    └── ApiError                      an API request failed (status, reason, short message)
        ├── RetryableApiError         worth retrying later: `delay_s` says when
        │   ├── ApiUnreachable        no HTTP answer (connect, read, write timeouts, resets)
        │   ├── ApiConflict           409: someone wrote first; re-read and retry
        │   ├── ApiTooManyRequests    429: the API is shedding load; honours Retry-After
        │   └── ApiServerError        5xx
        └── PermanentApiError         retrying the same request cannot help
            ├── ApiNotFound           404 (usually handled by the caller: "absent")
            ├── ApiForbidden          401/403: RBAC or credentials; fix the chart, not the code
            └── ApiInvalid            400/422: the object or patch was refused

`to_kopf` turns any of them into kopf's own temporary/permanent errors at the handler edge.
Messages are cut to `MAX_MESSAGE_CHARS` so an echoed object (maybe a Secret) never floods logs.
"""

from __future__ import annotations

from typing import ClassVar

import kopf

MAX_MESSAGE_CHARS = 300
DEFAULT_RETRY_DELAY_S = 10.0
# A Retry-After beyond this is clamped: a handler parked for an hour looks like a hang.
MAX_RETRY_AFTER_S = 300.0


class OperatorError(Exception):
    """Root of every error the operator raises on purpose."""


class ApiError(OperatorError):
    """A Kubernetes API request failed."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message[:MAX_MESSAGE_CHARS])
        self.status = status
        self.reason = reason


class RetryableApiError(ApiError):
    """Retrying later may succeed."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", delay_s: float | None = None
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.delay_s = DEFAULT_RETRY_DELAY_S if delay_s is None else min(max(delay_s, 0.0), MAX_RETRY_AFTER_S)


class ApiUnreachable(RetryableApiError):
    """No HTTP answer at all."""


class ApiConflict(RetryableApiError):
    """409: the object changed under us (or already exists)."""


class ApiTooManyRequests(RetryableApiError):
    """429: back off for Retry-After seconds."""


class ApiServerError(RetryableApiError):
    """5xx from the API server."""


class PermanentApiError(ApiError):
    """The same request will fail again."""


class ApiNotFound(PermanentApiError):
    """404: the object (or its whole resource type) does not exist."""


class ApiForbidden(PermanentApiError):
    """401/403: the operator's credentials or RBAC do not allow the request."""


class ApiInvalid(PermanentApiError):
    """400/422: the API refused the object or patch."""


# kube-apiserver answers a server-side apply whose fields have the wrong type for the schema (a string
# where a list belongs) with 500 and this message, not 422: the same body fails every time.
TYPED_PATCH_REFUSAL = "failed to create typed patch object"


def for_status(
    status: int, message: str, *, reason: str = "", retry_after_s: float | None = None
) -> ApiError:
    """The most specific error for an HTTP status."""
    if status == 500 and TYPED_PATCH_REFUSAL in message:
        return ApiInvalid(message, status=status, reason=reason)
    if status == 404:
        return ApiNotFound(message, status=status, reason=reason)
    if status in (401, 403):
        return ApiForbidden(message, status=status, reason=reason)
    if status == 409:
        return ApiConflict(message, status=status, reason=reason, delay_s=1.0)
    if status == 429:
        return ApiTooManyRequests(message, status=status, reason=reason, delay_s=retry_after_s)
    if status >= 500:
        return ApiServerError(message, status=status, reason=reason, delay_s=retry_after_s)
    return ApiInvalid(message, status=status, reason=reason)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only; dates are rare from the API)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def to_kopf(error: ApiError) -> kopf.TemporaryError | kopf.PermanentError:
    """kopf's retry policy for an API error: temporary with a delay, or permanent with the reason."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, RetryableApiError):
        return kopf.TemporaryError(text, delay=error.delay_s)
    return kopf.PermanentError(text)
