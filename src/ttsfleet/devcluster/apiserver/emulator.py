"""`ApiServer`: kmock's KubernetesEmulator extended into an API server that kopf and kubectl accept.

kmock still parses nothing of its own here (see `paths.py`), still routes every request through its DSL
(so tests can inject faults with `server['patch ttsbackends'] << 500`), and still renders errors and
streams; the resource semantics come from `operations.ObjectApi` and watches from `watching.py`. Every
request is recorded in `audit` (also served at `GET /_audit`, reset with `DELETE /_audit`).
"""

from __future__ import annotations

import aiohttp.web
import attrs
import kmock

# kmock 0.8 exports neither its Response (status + headers + payload) nor its mid-stream error wrapper.
from kmock._internal import rendering

from ttsfleet.devcluster.apiserver import (
    authorization,
    discovery,
    errors,
    fieldsets,
    matching,
    paths,
    tables,
    watching,
)
from ttsfleet.devcluster.apiserver.audit import AuditLog, AuditRecord
from ttsfleet.devcluster.apiserver.operations import ObjectApi
from ttsfleet.devcluster.apiserver.resources import NAMESPACE_RESOURCE, ResourceRegistry
from ttsfleet.devcluster.apiserver.storage import Body, Store

INITIAL_NAMESPACES = ("default", "kube-system")
AUDIT_PATH = "/_audit"


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """An in-memory Kubernetes API: run it with `serving.running_apiserver()` or `kmock.Server`."""

    # Idle watches get a BOOKMARK this often (kopf reconnects streams silent for 70 s).
    bookmark_interval_s: float = 10.0
    # Changes kept for watches resuming from a resourceVersion; older ones get 410 Gone.
    history_size: int = 10_000
    # kmock keeps every request for assertions; a long-running server keeps at most this many.
    request_history_limit: int | None = None
    audit: AuditLog = attrs.field(factory=AuditLog)
    # Callers held to RBAC, by User-Agent prefix (see `authorization`); everyone else is an admin.
    identities: authorization.Identities = attrs.field(
        factory=lambda: authorization.Identities(by_agent_prefix={})
    )
    store: Store = attrs.field(init=False)
    registry: ResourceRegistry = attrs.field(init=False)
    api: ObjectApi = attrs.field(init=False)
    _request_count: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(self.history_size)
        self.registry = ResourceRegistry.with_builtins()
        self.api = ObjectApi(self.store, self.registry)
        for name in INITIAL_NAMESPACES:
            self.api.create(NAMESPACE_RESOURCE, None, {"metadata": {"name": name}})
        # Ahead of the catch-all PUT/DELETE below: kmock tries fallbacks in the order they were added.
        self.fallback[f"get {AUDIT_PATH}"] << self._serve_audit
        self.fallback[f"delete {AUDIT_PATH}"] << self._reset_audit
        # kmock's own fallbacks cover list/watch/get/create/patch/delete; PUT and collection deletes
        # have no kmock action, so they get theirs here.
        self.fallback[kmock.method.PUT] << self._serve_resource
        self.fallback[kmock.method.DELETE] << self._serve_resource

    # -- request intake ----------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """aiohttp's entry point: parse with `paths`, then kmock's matching, errors as Status."""
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            request = await paths.build_request(raw_request, self._request_count)
            self._request_count += 1
            self._remember(request)
            try:
                return await self._handle(request)
            except rendering.StreamingError as exc:  # the stream had started: answer inside it
                raw_response = exc.args[0]
                raise exc.__cause__ or exc from None
        except Exception as exc:
            # API errors are answers, not failures; anything else is kept for kmock's `errors`.
            if not isinstance(exc, kmock.KubernetesError) and self._errors:
                self._errors[-1].append(exc)
            if raw_response is None or not raw_response.prepared:
                response: aiohttp.web.StreamResponse = await self._render_error(exc)
                return response
            await self._stream_error(exc, raw_response)
            await raw_response.write_eof()
            return raw_response

    def _remember(self, request: kmock.Request) -> None:
        self._requests.append(request)
        limit = self.request_history_limit
        if limit is not None and len(self._requests) > limit:
            # Drop the older half at once so trimming is rare; reactions keep their own lists too.
            del self._requests[: len(self._requests) // 2]
            for payload in self._payloads:
                kept = getattr(payload, "_requests", None)
                if isinstance(kept, list) and len(kept) > limit // 2:
                    del kept[: len(kept) - limit // 2]

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.url.path != AUDIT_PATH:
            self._authorize(request, self.audit.record(request))
        # Instead of KubernetesEmulator._handle (its object tracking is replaced by `ObjectApi`) and
        # RawHandler._handle (which scans the request history per reaction, see `matching`).
        for reaction in matching.candidates(self._payloads, request, self):
            try:
                response: aiohttp.web.StreamResponse = await reaction(request)
                return response
            except rendering.ReactionMismatchError:  # it no longer matches or ran out: never again
                reaction._disabled.set()
            except NotImplementedError:  # it saw the request but has nothing to answer with
                pass
        raise NotImplementedError(f"no reaction answers {request.method} {request.url.path}")

    # -- authorization -----------------------------------------------------------------------------

    def _authorize(self, request: kmock.Request, record: AuditRecord) -> None:
        user = self.identities.user_of(record.user_agent)
        if user is None or not record.is_resource_request:
            return
        resource = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
        asked = authorization.Attributes(
            record.verb, record.api_group, resource, record.namespace, record.name
        )
        checks = [asked]
        if record.verb in ("create", "update", "patch"):
            checks += authorization.owner_finalizer_checks(request.data, record.namespace, self._plural_of)
        bindings = [
            *self.store.objects_of(authorization.RBAC_GROUP, "clusterrolebindings"),
            *self.store.objects_of(authorization.RBAC_GROUP, "rolebindings"),
        ]
        for check in checks:
            if not authorization.is_allowed(user, check, bindings, self._role):
                group = check.api_group
                qualified = (
                    f"{check.resource.split('/')[0]}.{group}" if group else check.resource.split("/")[0]
                )
                message = authorization.forbidden_message(user, check, qualified)
                raise errors.forbidden(message, check.name, group, check.resource.split("/")[0])

    def _role(self, kind: str, namespace: str, name: str) -> Body | None:
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        return self.store.get((authorization.RBAC_GROUP, plural, namespace, name))

    def _plural_of(self, api_version: str, kind: str) -> tuple[str, str] | None:
        spec = self.registry.find_kind(api_version, kind)
        return None if spec is None else (spec.group, spec.plural)

    # -- resources ---------------------------------------------------------------------------------

    async def _serve_list(self, request: kmock.Request) -> rendering.Response:
        return await self._serve_resource(request)

    # kmock declares a generator here; a Response carries the watch headers along with the stream.
    async def _serve_watch(self, request: kmock.Request) -> rendering.Response:  # type: ignore[override]
        return await self._serve_resource(request)

    async def _serve_fetch(self, request: kmock.Request) -> rendering.Response:
        return await self._serve_resource(request)

    async def _serve_create(self, request: kmock.Request) -> rendering.Response:
        return await self._serve_resource(request)

    async def _serve_update(self, request: kmock.Request) -> rendering.Response:
        return await self._serve_resource(request)

    async def _serve_delete(self, request: kmock.Request) -> rendering.Response:
        return await self._serve_resource(request)

    async def _serve_resource(self, request: kmock.Request) -> rendering.Response:
        resource = request.resource
        if resource is None or not resource.plural or not resource.version:
            raise errors.resource_not_found(request.url.path)
        spec = self.api.spec(resource.group or "", resource.version, resource.plural)
        method = str(request.method.value).upper()
        namespace, name, subresource = request.namespace, request.name, request.subresource
        # kmock keeps the status of a reaction's last Response: every answer states its own.
        if method == "GET" and paths.is_watch(dict(request.params)):
            events = watching.stream(
                self.store, spec, request, lambda body: self.api.present(spec, body), self.bookmark_interval_s
            )
            return rendering.Response(
                status=200, headers={"Content-Type": "application/json"}, payload=events
            )
        status, body = 200, None
        manager = fieldsets.manager_of(dict(request.params), request.headers.get("User-Agent", ""))
        if method == "GET":
            body = (
                self.api.get(spec, namespace, name, subresource)
                if name
                else self.api.list(spec, namespace, request.params)
            )
            if subresource is None and tables.wants_table(request.headers.get("Accept", "")):
                objects = body["items"] if name is None else [body]
                version = str(self.store.resource_version)
                body = tables.table(spec, objects, version, self.api.now())
        elif method == "POST" and name is None:
            status, body = 201, self.api.create(spec, namespace, request.data, manager)
        elif method == "PUT" and name:
            body = self.api.replace(spec, namespace, name, subresource, request.data, manager)
        elif method == "PATCH" and name:
            content_type = request.headers.get("Content-Type", "")
            body = self.api.patch(
                spec,
                namespace,
                name,
                subresource,
                content_type,
                request.data,
                request.text,
                params=dict(request.params),
                manager=manager,
            )
        elif method == "DELETE":
            body = (
                self.api.delete(spec, namespace, name, request.data, request.params)
                if name
                else self.api.delete_collection(spec, namespace, request.params)
            )
        else:
            raise errors.method_not_allowed(f"{method} is not supported on {request.url.path}")
        return rendering.Response(status=status, headers={"Content-Type": "application/json"}, payload=body)

    # -- discovery (kmock's scaffold routes these paths to these methods) --------------------------

    async def _serve_root(self, request: kmock.Request) -> Body:
        return discovery.root_paths(self.registry)

    async def _serve_server_version(self, request: kmock.Request) -> Body:
        return dict(discovery.SERVER_VERSION)

    async def _serve_api(self, request: kmock.Request) -> Body:
        return discovery.api_versions(request.url.raw_authority or "127.0.0.1")

    async def _serve_apis(self, request: kmock.Request) -> Body:
        return discovery.api_group_list(self.registry)

    async def _serve_group(self, request: kmock.Request) -> Body:
        group = request.resource.group if request.resource is not None else None
        document = discovery.api_group(self.registry, group or "")
        if document is None:
            raise errors.resource_not_found(request.url.path)
        return document

    async def _serve_version(self, request: kmock.Request) -> Body:
        resource = request.resource
        document = (
            discovery.resource_list(self.registry, resource.group or "", resource.version)
            if resource is not None and resource.version
            else None
        )
        if document is None:
            raise errors.resource_not_found(request.url.path)
        return document

    # -- audit -------------------------------------------------------------------------------------

    async def _serve_audit(self, request: kmock.Request) -> Body:
        return self.audit.as_json()

    async def _reset_audit(self, request: kmock.Request) -> Body:
        self.audit.reset()
        return {"items": []}

    # -- Python access for tests and the local fleet ----------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` of the first server running this emulator."""
        return str(self.url).rstrip("/")

    def get_object(self, resource: str, namespace: str | None, name: str) -> Body | None:
        """A stored object by resource (`"apps/v1/deployments"`, `"v1/pods"`), or None."""
        parsed = kmock.resource(resource)
        spec = self.api.spec(parsed.group or "", parsed.version or "", parsed.plural or "")
        body = self.store.get(self.api.key(spec, namespace if spec.namespaced else None, name))
        return None if body is None else self.api.present(spec, body)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[Body]:
        """Stored objects of a resource, in one namespace or all."""
        parsed = kmock.resource(resource)
        spec = self.api.spec(parsed.group or "", parsed.version or "", parsed.plural or "")
        return [
            self.api.present(spec, body) for body in self.store.objects_of(spec.group, spec.plural, namespace)
        ]

    def close_watches(self) -> None:
        """End every open watch stream, so that the HTTP server can stop without waiting for them."""
        self.store.close_subscriptions()
