"""The request runtime: runs requests for every transport, once.

It takes what the protocol core admitted and runs it: inline when the handler never waits
(``answer_inline``), else in a task; tracks and cancels it; gives it a way back to the client
(``Outlet``: progress, logs, server->client requests with timeouts, ``await_answer``); settles the
answers. It talks to the application through ``Application`` (``anyport.Server`` implements it)
and to byte-stream transports through ``MessageStream``; it imports neither ``anyport.server`` nor
``anyport.transports``. ``StreamRuntime`` serves one stream (stdio, the in-memory pair, an HTTP+SSE
connection); the Streamable HTTP adapter drives the same pieces per POST.
"""

from anyport.runtime._asking import CANCELLED, TIMED_OUT, await_answer
from anyport.runtime._hub import LIST_KINDS, Fanout, Listener, NotificationHub, Peer
from anyport.runtime._ports import Application, MessageStream, Outlet
from anyport.runtime._principal import PRINCIPAL, current_principal
from anyport.runtime._stream import StreamRuntime, answer_inline, hand_notification, serve_stream

__all__ = [
    "CANCELLED",
    "LIST_KINDS",
    "PRINCIPAL",
    "TIMED_OUT",
    "Application",
    "Fanout",
    "Listener",
    "MessageStream",
    "NotificationHub",
    "Outlet",
    "Peer",
    "StreamRuntime",
    "answer_inline",
    "await_answer",
    "current_principal",
    "hand_notification",
    "serve_stream",
]
