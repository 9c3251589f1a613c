"""AWS Lambda, buffered: API Gateway (HTTP API or REST) or a Function URL in BUFFERED mode invoke
``lambda_handler.handler``; Mangum turns the event into one ASGI request and the answer into the
response. Answers are whole JSON documents (no SSE: Mangum buffers), at most 6 MB.

For streamed answers use the Lambda Web Adapter instead (lambda/Dockerfile): it runs the real
``anyport serve`` in the function and streams through a Function URL in RESPONSE_STREAM mode.
"""

from __future__ import annotations

from mangum import Mangum
from mcp_app import app

# lifespan="auto": Mangum runs the app's lifespan around every invocation; the app allows it.
handler = Mangum(app, lifespan="auto")
