"""Transports: they move framed messages and know nothing of tools."""

from anyport.transports._base import MessageStream

__all__ = ["MessageStream"]
