"""The protobuf bodies kubectl's typed `create` commands send, read into the JSON objects they stand for.

`kubectl create namespace|secret|configmap` post `application/vnd.kubernetes.protobuf`: the magic
`k8s\\0`, then a `runtime.Unknown` (typeMeta, raw bytes) whose raw bytes are the object in the
generated.proto layout of k8s.io/api. Only those kinds' fields kubectl sets are read (ObjectMeta's
name, generateName, namespace, labels, annotations; a Secret's data, stringData and type; a ConfigMap's
data and binaryData); anything else is refused with 415, as for any unknown format. Pure functions.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that is not a protobuf object of a kind read here."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varints, bytes for length-delimited ones."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProtobufError("truncated field")
            yield number, data[position : position + length]
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    return value.decode()


def _entry(value: int | bytes) -> tuple[str, bytes]:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a map entry")
    parts = dict(fields(value))
    key, item = parts.get(1, b""), parts.get(2, b"")
    if not isinstance(key, bytes) or not isinstance(item, bytes):
        raise ProtobufError("malformed map entry")
    return key.decode(), item


_META_STRINGS = {1: "name", 2: "generateName", 3: "namespace"}
_META_MAPS = {11: "labels", 12: "annotations"}


def _metadata(data: bytes) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for number, value in fields(data):
        if number in _META_STRINGS and _text(value):  # proto3 strings: empty means unset
            metadata[_META_STRINGS[number]] = _text(value)
        elif number in _META_MAPS:
            key, item = _entry(value)
            metadata.setdefault(_META_MAPS[number], {})[key] = item.decode()
    return metadata


def _secret(data: bytes, body: dict[str, Any]) -> None:
    body["type"] = "Opaque"  # the apiserver's default, for a type left empty
    for number, value in fields(data):
        if number == 2:
            key, item = _entry(value)
            body.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3 and _text(value):
            body["type"] = _text(value)
        elif number == 4:
            key, item = _entry(value)
            body.setdefault("stringData", {})[key] = item.decode()


def _config_map(data: bytes, body: dict[str, Any]) -> None:
    for number, value in fields(data):
        if number == 2:
            key, item = _entry(value)
            body.setdefault("data", {})[key] = item.decode()
        elif number == 3:
            key, item = _entry(value)
            body.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()


_KINDS = {("v1", "Namespace"): None, ("v1", "Secret"): _secret, ("v1", "ConfigMap"): _config_map}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a kind listed above."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic")
    envelope = dict(fields(body[len(MAGIC) :]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("malformed envelope")
    names = {number: _text(value) for number, value in fields(type_meta)}
    api_version, kind = names.get(1, ""), names.get(2, "")
    if (api_version, kind) not in _KINDS:
        raise ProtobufError(f"protobuf {api_version} {kind} is not read by this API")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    read_rest = _KINDS[(api_version, kind)]
    for number, value in fields(raw):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _metadata(value)
    if read_rest is not None:
        read_rest(raw, obj)
    return obj
