"""Whether this installation has the embedded API server, a development tool outside the wheel.

The embedded API (`ttsfleet.devcluster.apiserver`) and what it needs (kmock, jsonschema,
kubernetes-validate, cel-python) come only with a source checkout and the `embedded-api` extra; a
production install has neither, and whatever would start the embedded API says so in these words.
"""

from __future__ import annotations

import importlib.util

EXTRA = "embedded-api"
# The package itself and the top-level modules of the extra's distributions.
MODULES = ("ttsfleet.devcluster.apiserver", "kmock", "jsonschema", "kubernetes_validate", "celpy")


class EmbeddedApiMissing(RuntimeError):
    """The embedded API server cannot run in this installation."""


def missing_modules() -> list[str]:
    """The modules of the embedded API that this installation cannot import."""
    missing = []
    for name in MODULES:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(name)
    return missing


def require() -> None:
    """Raise `EmbeddedApiMissing`, naming the extra, unless the embedded API can be imported."""
    missing = missing_modules()
    if missing:
        raise EmbeddedApiMissing(
            f"the embedded API server is not installed (missing: {', '.join(missing)}). It is a development "
            f"tool outside the production wheel: from a source checkout, run `make install` or "
            f"`pip install -e '.[{EXTRA}]'`."
        )
