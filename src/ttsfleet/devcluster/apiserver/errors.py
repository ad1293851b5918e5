"""API errors as the real apiserver words them: HTTP status, Status `reason`, message and details.

kmock renders any `kmock.KubernetesError` as a `Status` object; these factories fill it the way kubectl,
the `kubernetes` client and kopf expect (kubectl prints `Error from server (Reason): message`).
"""

from __future__ import annotations

from typing import Any

import kmock


def _error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details or {"": ""})


def not_found(resource: str, name: str, group: str = "") -> kmock.KubernetesError:
    """404: the named object does not exist."""
    return _error(404, "NotFound", f'{resource} "{name}" not found', name=name, group=group, kind=resource)


def resource_not_found(path: str) -> kmock.KubernetesError:
    """404: nothing is served at this path."""
    return _error(404, "NotFound", f"the server could not find the requested resource ({path})")


def already_exists(resource: str, name: str, group: str = "") -> kmock.KubernetesError:
    """409: create of a name that exists."""
    return _error(
        409, "AlreadyExists", f'{resource} "{name}" already exists', name=name, group=group, kind=resource
    )


def conflict(resource: str, name: str, why: str) -> kmock.KubernetesError:
    """409: a stale resourceVersion or a failed precondition."""
    return _error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        name=name,
        kind=resource,
    )


def invalid(resource: str, name: str, why: str) -> kmock.KubernetesError:
    """422: the object (or a JSON-patch `test`) is not acceptable."""
    return _error(422, "Invalid", f'{resource} "{name}" is invalid: {why}', name=name, kind=resource)


def bad_request(why: str) -> kmock.KubernetesError:
    """400: a malformed body or query."""
    return _error(400, "BadRequest", why)


def method_not_allowed(why: str) -> kmock.KubernetesError:
    """405: the verb is not served here."""
    return _error(405, "MethodNotAllowed", why)


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    """415: a patch type the emulator does not implement."""
    return _error(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
    )


def gone(why: str) -> kmock.KubernetesError:
    """410: a watch asked for a resourceVersion older than the kept history."""
    return _error(410, "Expired", why)


def forbidden(message: str, name: str, group: str, kind: str) -> kmock.KubernetesError:
    """403: RBAC does not let the caller do this."""
    return _error(403, "Forbidden", message, name=name, group=group, kind=kind)
