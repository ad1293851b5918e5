"""The TTSBackend resource as a whole: its identity in the API and the object kopf hands over."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from ttsfleet.operator.api.base import ApiModel
from ttsfleet.operator.api.spec import TTSBackendSpec
from ttsfleet.operator.api.status import TTSBackendStatus

GROUP = "ttsfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TTSBackend"
PLURAL = "ttsbackends"
SINGULAR = "ttsbackend"
SHORT_NAMES = ("ttsb",)
CATEGORIES = ("ttsfleet",)
# Children are named `<name>-…` (the ConfigMap adds `-config`) and the Service name must be a DNS-1035
# label of at most 63 characters; 50 leaves room and keeps pod names readable.
MAX_NAME_LENGTH = 50
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(ApiModel):
    """The parts of metadata the operator reads."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Name of the backend; names its children.")
    namespace: str = Field(default="default", description="Namespace of the backend and its children.")
    uid: str | None = Field(default=None, description="Unique id, for ownerReferences.")
    generation: int | None = Field(default=None, description="Spec generation.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of the backend.")


class TTSBackend(ApiModel):
    """A TTSBackend object: metadata, spec and (optional) status."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(default=API_VERSION, description="ttsfleet.io/v1alpha1.")
    kind: str = Field(default=KIND, description="TTSBackend.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: TTSBackendSpec = Field(description="Desired state.")
    status: TTSBackendStatus | None = Field(default=None, description="Observed state.")

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> TTSBackend:
        """Parse a raw object (as kopf or the API hands it over); raises pydantic.ValidationError."""
        return cls.model_validate(body)
