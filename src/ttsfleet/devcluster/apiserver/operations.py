"""The resource API without HTTP: get, list, create, replace, patch, delete, on objects and subresources.

Each method takes the resource spec and what the request named, applies `lifecycle` rules, writes through
the `Store`, keeps CRD-declared resources in the registry, cascades namespace and owner deletions, and
returns the body to answer with (in the requested version). Errors are `kmock.KubernetesError`s.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from ttsfleet.devcluster.apiserver import (
    admission,
    crds,
    errors,
    fieldsets,
    gc,
    lifecycle,
    patching,
    scale,
    selectors,
)
from ttsfleet.devcluster.apiserver.resources import (
    CRD_RESOURCE,
    NAMESPACE_RESOURCE,
    ResourceRegistry,
    ResourceSpec,
)
from ttsfleet.devcluster.apiserver.storage import Body, ObjectKey, Store


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ObjectApi:
    """Stateful operations on the store, one method per API verb."""

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.registry = registry
        self._clock = clock

    def now(self) -> datetime.datetime:
        """The API's clock (creation timestamps, ages in Tables)."""
        return self._clock()

    # -- lookups -----------------------------------------------------------------------------------

    def spec(self, group: str, version: str, plural: str) -> ResourceSpec:
        """The served resource, or 404."""
        spec = self.registry.find(group, version, plural)
        if spec is None:
            raise errors.resource_not_found(f"{group}/{version}/{plural}".lstrip("/"))
        return spec

    def key(self, spec: ResourceSpec, namespace: str | None, name: str) -> ObjectKey:
        """Where an object of `spec` lives; 404 for a scope that does not fit the resource."""
        if spec.namespaced and not namespace:
            raise errors.resource_not_found(f"{spec.qualified_name}/{name} needs a namespace")
        if not spec.namespaced and namespace:
            raise errors.resource_not_found(f"{spec.qualified_name} is not namespaced")
        return (spec.group, spec.plural, namespace or "", name)

    @staticmethod
    def present(spec: ResourceSpec, body: Body) -> Body:
        """A stored object as the requested version shows it (conversion is identity here)."""
        return dict(body, apiVersion=spec.api_version)

    def _existing(self, spec: ResourceSpec, key: ObjectKey) -> Body:
        body = self.store.get(key)
        if body is None:
            raise errors.not_found(spec.qualified_name, key[3], spec.group)
        return body

    def get(
        self, spec: ResourceSpec, namespace: str | None, name: str, subresource: str | None = None
    ) -> Body:
        """One object, its /status (the same object) or its /scale."""
        body = self._existing(spec, self.key(spec, namespace, name))
        if subresource == "scale":
            return scale.scale_of(spec, body)
        self._check_subresource(spec, subresource)
        return self.present(spec, body)

    def list(self, spec: ResourceSpec, namespace: str | None, params: Mapping[str, str]) -> Body:
        """A `FooList` with the store's resourceVersion, filtered by the request's selectors."""
        matches = selectors.request_predicate(params)
        items = [
            self.present(spec, body)
            for body in self.store.objects_of(spec.group, spec.plural, namespace)
            if matches(body)
        ]
        return {
            "apiVersion": spec.api_version,
            "kind": f"{spec.kind}List",
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }

    @staticmethod
    def _check_subresource(spec: ResourceSpec, subresource: str | None) -> None:
        if subresource is None or (subresource == "status" and spec.has_status):
            return
        raise errors.resource_not_found(f"{spec.qualified_name}/{subresource}")

    # -- writes ------------------------------------------------------------------------------------

    def create(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        body: Any,
        manager: str = fieldsets.UNKNOWN_MANAGER,
        managed: fieldsets.Managed | None = None,
    ) -> Body:
        """Store a new object (generateName, uid, timestamps); 409 if the name is taken.

        The field manager owns every field it set (`managed`: the sets an apply computed instead).
        """
        if spec.namespaced and namespace is None and isinstance(body, dict):
            namespace = (body.get("metadata") or {}).get("namespace") or "default"
        if spec.namespaced and self.store.get(("", "namespaces", "", namespace or "")) is None:
            raise errors.not_found("namespaces", namespace or "")

        def is_taken(name: str) -> bool:
            return self.store.get((spec.group, spec.plural, namespace or "", name)) is not None

        new = lifecycle.new_object(spec, body, namespace, self._clock(), is_taken)
        key = self.key(spec, new["metadata"].get("namespace"), new["metadata"]["name"])
        if self.store.get(key) is not None:
            raise errors.already_exists(spec.qualified_name, key[3], spec.group)
        admission.check(spec, new)
        if managed is None:
            managed = fieldsets.record_update(None, new, manager)
        self._stamp_managed(spec, new, managed)
        if spec.storage_key == CRD_RESOURCE.storage_key:
            new["status"] = crds.established_status(new, lifecycle.timestamp(self._clock()))
            self.registry.replace_crd(new["metadata"]["name"], crds.served_resources(new))
        return self.present(spec, self.store.write(key, new))

    def replace(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        subresource: str | None,
        body: Any,
        manager: str = fieldsets.UNKNOWN_MANAGER,
    ) -> Body:
        """PUT: the whole object (or status, or Scale); 409 on a stale resourceVersion."""
        if isinstance(body, dict) and (body.get("metadata") or {}).get("name") not in (None, name):
            raise errors.bad_request("the name of the object does not match the name on the URL")
        key = self.key(spec, namespace, name)
        return self._write_view(spec, key, self._existing(spec, key), body, subresource, manager)

    def patch(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        subresource: str | None,
        content_type: str,
        data: Any,
        text: str,
        params: Mapping[str, str] | None = None,
        manager: str = fieldsets.UNKNOWN_MANAGER,
    ) -> Body:
        """PATCH by content type: merge, JSON (with `test`), strategic subset, server-side apply."""
        key = self.key(spec, namespace, name)
        media = content_type.split(";")[0].strip().lower()
        if media == "application/apply-patch+yaml" and subresource is None:
            data = yaml.safe_load(text) if data is None else data
            return self._apply(spec, namespace, name, data, dict(params or {}))
        old = self._existing(spec, key)
        view = scale.scale_of(spec, old) if subresource == "scale" else self.present(spec, old)
        try:
            if media == "application/json-patch+json":
                if not isinstance(data, list):
                    raise errors.bad_request("a JSON patch must be a list of operations")
                patched = patching.json_patch(view, data)
            elif media == "application/merge-patch+json":
                patched = patching.merge_patch(view, data)
            elif media == "application/strategic-merge-patch+json" and spec.custom:
                # As the apiserver: strategic merge needs patch strategies, which CRDs do not declare.
                raise errors.unsupported_media_type(content_type)
            elif media in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
                patched = patching.strategic_merge_patch(view, data)
            else:
                raise errors.unsupported_media_type(content_type)
        except patching.PatchError as exc:
            raise errors.invalid(spec.qualified_name, name, str(exc)) from exc
        return self._write_view(spec, key, old, patched, subresource, manager)

    def _apply(
        self, spec: ResourceSpec, namespace: str | None, name: str, config: Any, params: Mapping[str, str]
    ) -> Body:
        """Server-side apply: create, or merge with removals of what this manager no longer applies."""
        manager = params.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH with apply requires a fieldManager parameter")
        if not isinstance(config, dict):
            raise errors.bad_request("the body of an apply must be an object")
        config = dict(config, metadata=dict(config.get("metadata") or {}, name=name))
        key = self.key(spec, namespace, name)
        live = self.store.get(key)
        try:
            merged, managed = fieldsets.apply(
                None if live is None else self.present(spec, live),
                config,
                manager,
                force=params.get("force") == "true",
            )
        except fieldsets.ApplyConflict as exc:
            raise errors.conflict(spec.qualified_name, name, str(exc)) from exc
        if live is None:
            return self.create(spec, namespace, merged, manager, managed)
        return self._write_view(spec, key, live, merged, None, manager, managed)

    def _stamp_managed(
        self, spec: ResourceSpec, body: Body, managed: fieldsets.Managed, old: Body | None = None
    ) -> None:
        if old is not None and fieldsets.parse(old) == {k: v for k, v in managed.items() if v}:
            # Same owners of the same fields: keep the record (and its times), so a no-op stays one.
            if "managedFields" in old["metadata"]:
                body["metadata"]["managedFields"] = old["metadata"]["managedFields"]
            else:
                body["metadata"].pop("managedFields", None)
            return
        now = lifecycle.timestamp(self._clock())
        body["metadata"]["managedFields"] = fieldsets.serialize(managed, spec.api_version, now)

    def _write_view(
        self,
        spec: ResourceSpec,
        key: ObjectKey,
        old: Body,
        new: Any,
        subresource: str | None,
        manager: str = fieldsets.UNKNOWN_MANAGER,
        managed: fieldsets.Managed | None = None,
    ) -> Body:
        requested_version = ((new.get("metadata") or {}) if isinstance(new, dict) else {}).get(
            "resourceVersion"
        )
        lifecycle.check_resource_version(spec, old, requested_version)
        if subresource == "scale":
            scaled = lifecycle.updated_object(
                spec, old, scale.with_replicas(spec, old, new), subresource=None
            )
            self._stamp_managed(spec, scaled, fieldsets.record_update(old, scaled, manager), old)
            return scale.scale_of(spec, self._update(spec, key, old, scaled))
        self._check_subresource(spec, subresource)
        new_body = lifecycle.updated_object(spec, old, new, subresource=subresource)
        if subresource is None:
            if managed is None:
                managed = fieldsets.record_update(old, new_body, manager)
            self._stamp_managed(spec, new_body, managed, old)
        elif "managedFields" in old["metadata"]:
            new_body["metadata"]["managedFields"] = old["metadata"]["managedFields"]
        return self.present(spec, self._update(spec, key, old, new_body))

    def _update(self, spec: ResourceSpec, key: ObjectKey, old: Body, new: Body) -> Body:
        admission.check(spec, new)
        if spec.storage_key == CRD_RESOURCE.storage_key:
            served = crds.served_resources(new)  # validate before storing
            same_names = (old.get("status") or {}).get("acceptedNames") == (new.get("spec") or {}).get(
                "names"
            )
            new = dict(
                new,
                status=old["status"]
                if same_names
                else crds.established_status(new, lifecycle.timestamp(self._clock())),
            )
            self.registry.replace_crd(new["metadata"]["name"], served)
        if lifecycle.is_unchanged(old, new):
            return old
        stored = self.store.write(key, new)
        if lifecycle.is_releasable(stored):
            self._remove(key)
        return stored

    # -- deletion ----------------------------------------------------------------------------------

    def delete(
        self, spec: ResourceSpec, namespace: str | None, name: str, options: Any, params: Mapping[str, str]
    ) -> Body:
        """Delete now, or mark for deletion while finalizers remain; dependents follow (GC)."""
        key = self.key(spec, namespace, name)
        old = self._existing(spec, key)
        lifecycle.check_preconditions(spec, old, options)
        policy = (options or {}).get("propagationPolicy") if isinstance(options, dict) else None
        if (policy or params.get("propagationPolicy")) == "Orphan":
            gc.orphan(self.store, old["metadata"]["uid"])
        return self.present(spec, self._delete_key(key))

    def delete_collection(self, spec: ResourceSpec, namespace: str | None, params: Mapping[str, str]) -> Body:
        """DELETE on a collection: every object the selectors match."""
        listed = self.list(spec, namespace, params)
        for item in listed["items"]:
            key = self.key(spec, item["metadata"].get("namespace"), item["metadata"]["name"])
            if self.store.get(key) is not None:
                self._delete_key(key)
        return listed

    def _delete_key(self, key: ObjectKey) -> Body:
        old = self.store.get(key)
        if old is None:
            raise errors.not_found(key[1], key[3], key[0])
        if lifecycle.is_deleting(old):
            return old
        if old["metadata"].get("finalizers"):
            return self.store.write(key, lifecycle.marked_for_deletion(old, self._clock()))
        return self._remove(key)

    def _remove(self, key: ObjectKey) -> Body:
        final = self.store.remove(key)
        if key[:2] == CRD_RESOURCE.storage_key:
            for spec in self.registry.remove_crd(key[3]):
                for body in self.store.objects_of(spec.group, spec.plural):
                    self._delete_if_present(self._key_of(spec, body))
        if key[:2] == NAMESPACE_RESOURCE.storage_key:
            for item_key, _ in self.store.items():
                if item_key[2] == key[3]:
                    self._delete_if_present(item_key)
        gc.collect(self.store, final["metadata"].get("uid", ""), self._delete_if_present)
        return final

    def _delete_if_present(self, key: ObjectKey) -> None:
        if self.store.get(key) is not None:
            self._delete_key(key)

    @staticmethod
    def _key_of(spec: ResourceSpec, body: Body) -> ObjectKey:
        return (spec.group, spec.plural, body["metadata"].get("namespace") or "", body["metadata"]["name"])
