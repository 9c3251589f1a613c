"""``_Resources``: the ``resources/*`` handlers of ``Server`` (list, templates, read, subscribe,
unsubscribe) and ``subscriptions/listen``.
"""

from __future__ import annotations

import base64
from typing import Any

import pydantic

from anyport._exceptions import InvalidParamsError, ResourceNotFoundError
from anyport.protocol import META_SUBSCRIPTION_ID, IncomingRequest, bounded, clip
from anyport.runtime._hub import LIST_KINDS, NotificationHub
from anyport.server._content import to_text
from anyport.server._context import InputRequired, Outlet
from anyport.server._entries import ResourceContents, _page, _Resource, _validation_text
from anyport.server._mrtr import _Mrtr
from anyport.server._scopes import _Scopes
from anyport.server._tasks import client_has_tasks_extension, missing_tasks_extension


class _Resources(_Mrtr, _Scopes):
    """Listing and reading resources; resource subscriptions and listen streams."""

    _resources: dict[str, _Resource]
    _templates: list[_Resource]
    hub: NotificationHub
    page_size: int | None

    async def _list_resources(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return _page([r.meta for r in self._resources.values() if self._visible(r.scopes)], req.params, "resources", self.page_size)

    async def _list_templates(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        return _page([r.meta for r in self._templates if self._visible(r.scopes)], req.params, "resourceTemplates", self.page_size)

    def _find_resource(self, uri: str) -> tuple[_Resource, dict[str, str]] | None:
        entry = self._resources.get(uri)
        if entry is not None:
            return entry, {}
        for t in self._templates:
            values = t.template.match(uri)
            if values is not None:
                return t, values
        return None

    async def _read_resource(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/read needs a string uri")
        found = self._find_resource(uri)
        if found is None:
            # F-RES-04: -32002 on legacy revisions, -32602 on 2026-07-28.
            raise ResourceNotFoundError(
                f"Resource not found: {clip(uri)}", code=req.revision.resource_not_found_code, data={"uri": bounded(uri)}
            )
        entry, values = found
        self._check_scopes(f"resource {clip(uri)}", entry.scopes)
        try:
            kwargs = entry.args.validate(values)
        except pydantic.ValidationError as exc:
            raise InvalidParamsError(f"Invalid URI {clip(uri)}: {_validation_text(exc)}") from exc
        answers = self._answers(req, uri)
        try:
            value = await self._invoke(entry.fn, entry.is_async, kwargs, entry.args, req, outlet, answers)
        except InputRequired as exc:
            return self._input_required(req, uri, exc)
        return {"contents": _resource_contents(uri, value, entry.mime_type)}

    # -- subscriptions -----------------------------------------------------------------------------------

    async def _subscribe(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/subscribe needs a string uri")
        session_id = getattr(outlet, "session_id", None)
        if isinstance(session_id, str):
            self.hub.subscribe(session_id, uri)
        return {}

    async def _unsubscribe(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        uri = req.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidParamsError("resources/unsubscribe needs a string uri")
        session_id = getattr(outlet, "session_id", None)
        if isinstance(session_id, str):
            self.hub.unsubscribe(session_id, uri)
        return {}

    async def _listen(self, req: IncomingRequest, outlet: Outlet) -> dict[str, Any]:
        """``subscriptions/listen`` (M-20..M-23): acknowledge, then forward what the filter asked for
        until the client cancels (no response then) or the server closes it (a complete result)."""
        wanted = req.params.get("notifications")
        if wanted is None:
            wanted = {}
        if not isinstance(wanted, dict):
            raise InvalidParamsError("subscriptions/listen notifications must be an object")
        honoured: dict[str, Any] = {k: True for k in LIST_KINDS.values() if wanted.get(k) is True}
        uris = wanted.get("resourceSubscriptions")
        if uris is not None:
            if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
                raise InvalidParamsError("resourceSubscriptions must be an array of URIs")
            if uris:
                honoured["resourceSubscriptions"] = list(dict.fromkeys(uris))
        task_ids = wanted.get("taskIds")
        if task_ids is not None:
            if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
                raise InvalidParamsError("taskIds must be an array of task ids")
            if task_ids:
                if not client_has_tasks_extension(req):
                    raise missing_tasks_extension()  # SEP-2663
                honoured["taskIds"] = list(dict.fromkeys(task_ids))
        tag = {META_SUBSCRIPTION_ID: req.id}
        listener = self.hub.add_listener(honoured)  # before the ack: nothing is lost in between
        try:
            await outlet.notify(
                "notifications/subscriptions/acknowledged", {"_meta": dict(tag), "notifications": honoured}
            )
            while True:
                item = await listener.queue.get()
                if item is None:
                    break
                method, params = item
                meta = params.get("_meta")
                params["_meta"] = {**meta, **tag} if isinstance(meta, dict) else dict(tag)
                await outlet.notify(method, params)
        finally:
            self.hub.remove_listener(listener)
        return {"_meta": dict(tag)}


def _resource_contents(uri: str, value: Any, mime_type: str | None) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) and value and all(isinstance(v, ResourceContents) for v in value) else [value]
    out = []
    for item in items:
        if isinstance(item, ResourceContents):
            entry: dict[str, Any] = {"uri": item.uri or uri}
            mt = item.mime_type or mime_type
            if item.blob is not None:
                entry["blob"] = base64.b64encode(item.blob).decode()
            else:
                entry["text"] = item.text or ""
        elif isinstance(item, (bytes, bytearray)):
            entry = {"uri": uri, "blob": base64.b64encode(bytes(item)).decode()}
            mt = mime_type or "application/octet-stream"
        elif isinstance(item, str):
            entry = {"uri": uri, "text": item}
            mt = mime_type or "text/plain"
        else:
            entry = {"uri": uri, "text": to_text(item)}
            mt = mime_type or "application/json"
        if mt:
            entry["mimeType"] = mt
        out.append(entry)
    return out
