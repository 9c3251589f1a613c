"""The server application API."""

from anyport.server._content import Audio, EmbeddedResource, Image, ResourceLink, TextContent
from anyport.server._context import Context, ElicitResult, Question, Root, SamplingResult
from anyport.server._server import Completion, Message, ResourceContents, Server, ToolResult

__all__ = [
    "Audio",
    "Completion",
    "Context",
    "ElicitResult",
    "EmbeddedResource",
    "Image",
    "Message",
    "Question",
    "ResourceContents",
    "ResourceLink",
    "Root",
    "SamplingResult",
    "Server",
    "TextContent",
    "ToolResult",
]
