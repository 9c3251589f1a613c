"""The client API."""

from anyport.client._client import Client
from anyport.client._types import (
    CallToolResult,
    CompletionResult,
    GetPromptResult,
    Prompt,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    Tool,
)

__all__ = [
    "CallToolResult",
    "Client",
    "CompletionResult",
    "GetPromptResult",
    "Prompt",
    "ReadResourceResult",
    "Resource",
    "ResourceTemplate",
    "Tool",
]
