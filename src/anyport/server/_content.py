"""Content blocks a tool can return, and the conversion of any return value into them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from anyport.protocol import dumps

__all__ = ["Audio", "EmbeddedResource", "Image", "ResourceLink", "TextContent", "to_content_blocks"]


@dataclass(slots=True)
class TextContent:
    text: str
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        return _with_annotations({"type": "text", "text": self.text}, self.annotations)


@dataclass(slots=True)
class Image:
    """An image: raw ``data`` bytes (base64-encoded on the wire) and its MIME type."""

    data: bytes
    mime_type: str = "image/png"
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        return _with_annotations(
            {"type": "image", "data": base64.b64encode(self.data).decode(), "mimeType": self.mime_type}, self.annotations
        )


@dataclass(slots=True)
class Audio:
    data: bytes
    mime_type: str = "audio/wav"
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        return _with_annotations(
            {"type": "audio", "data": base64.b64encode(self.data).decode(), "mimeType": self.mime_type}, self.annotations
        )


@dataclass(slots=True)
class EmbeddedResource:
    uri: str
    text: str | None = None
    blob: bytes | None = None
    mime_type: str | None = None
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        res: dict[str, Any] = {"uri": self.uri}
        if self.mime_type:
            res["mimeType"] = self.mime_type
        if self.blob is not None:
            res["blob"] = base64.b64encode(self.blob).decode()
        else:
            res["text"] = self.text or ""
        return _with_annotations({"type": "resource", "resource": res}, self.annotations)


@dataclass(slots=True)
class ResourceLink:
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "resource_link", "uri": self.uri, "name": self.name, **self.extra}
        if self.description:
            block["description"] = self.description
        if self.mime_type:
            block["mimeType"] = self.mime_type
        return block


Content = TextContent | Image | Audio | EmbeddedResource | ResourceLink
CONTENT_TYPES = (TextContent, Image, Audio, EmbeddedResource, ResourceLink)


def _with_annotations(block: dict[str, Any], annotations: dict[str, Any] | None) -> dict[str, Any]:
    if annotations:
        block["annotations"] = annotations
    return block


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return dumps(value).decode()


def blocks_of(items: list[Any]) -> list[dict[str, Any]]:
    """Each item as its own block(s): block dicts pass through, anything else is converted."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            out.append(item)
        else:
            out.extend(to_content_blocks(item))
    return out


def to_content_blocks(value: Any) -> list[dict[str, Any]]:
    """Any return value as a list of content blocks (a str is one text block)."""
    if type(value) is str:
        return [{"type": "text", "text": value}]
    if value is None:
        return []
    if isinstance(value, CONTENT_TYPES):
        return [value.to_block()]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, CONTENT_TYPES) for v in value):
        return [v.to_block() for v in value]
    return [{"type": "text", "text": to_text(value)}]
