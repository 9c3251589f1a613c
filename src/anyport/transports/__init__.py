"""Transports: adapters that move bytes between a peer and the runtime (``anyport.runtime``)."""

from anyport.runtime._ports import MessageStream

__all__ = ["MessageStream"]
