"""Typed views of what a server returns. ``raw`` keeps the full result for anything not mapped."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CallToolResult",
    "CompletionResult",
    "GetPromptResult",
    "Prompt",
    "ReadResourceResult",
    "Resource",
    "ResourceTemplate",
    "Tool",
]


def _text_of(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    return "".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    title: str | None = None
    annotations: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Tool:
        return cls(
            name=str(raw.get("name", "")),
            description=raw.get("description"),
            input_schema=raw.get("inputSchema") or {},
            output_schema=raw.get("outputSchema"),
            title=raw.get("title"),
            annotations=raw.get("annotations"),
            raw=raw,
        )


@dataclass(slots=True)
class CallToolResult:
    content: list[dict[str, Any]]
    structured_content: Any = None
    is_error: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        """The text blocks joined (empty when there are none)."""
        return _text_of(self.content)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> CallToolResult:
        content = raw.get("content")
        return cls(
            content=content if isinstance(content, list) else [],
            structured_content=raw.get("structuredContent"),
            is_error=bool(raw.get("isError", False)),
            raw=raw,
        )


@dataclass(slots=True)
class Resource:
    uri: str
    name: str | None = None
    mime_type: str | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Resource:
        return cls(str(raw.get("uri", "")), raw.get("name"), raw.get("mimeType"), raw.get("description"), raw)


@dataclass(slots=True)
class ResourceTemplate:
    uri_template: str
    name: str | None = None
    mime_type: str | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> ResourceTemplate:
        return cls(str(raw.get("uriTemplate", "")), raw.get("name"), raw.get("mimeType"), raw.get("description"), raw)


@dataclass(slots=True)
class ReadResourceResult:
    contents: list[dict[str, Any]]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return "".join(str(c.get("text", "")) for c in self.contents if isinstance(c, dict) and "text" in c)

    @property
    def blob(self) -> bytes:
        return b"".join(base64.b64decode(c["blob"]) for c in self.contents if isinstance(c, dict) and "blob" in c)


@dataclass(slots=True)
class Prompt:
    name: str
    description: str | None = None
    arguments: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Prompt:
        args = raw.get("arguments")
        return cls(str(raw.get("name", "")), raw.get("description"), args if isinstance(args, list) else [], raw)


@dataclass(slots=True)
class GetPromptResult:
    messages: list[dict[str, Any]]
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class CompletionResult:
    values: list[str]
    total: int | None = None
    has_more: bool = False
