"""Load generators and reports for benchmarking MCP servers (``anyport bench``, ``bench/``).

Imported only by ``anyport bench`` and the repo's ``bench/`` scripts, never by ``import anyport``.
It speaks raw JSON-RPC (no MCP client, not even anyport's), so every server is measured the same
way:

- ``_mcp``: what both load generators say and check (revisions, ``ToolCall``, failure kinds);
- ``_stdio``: rows measured round-robin: sequential latency, pipelined throughput, server CPU
  per call and start-up time; on ``_stdio_pipes`` (a JSON-lines client on a child's stdio
  pipes) and ``_stdio_phases`` (the phases on one process);
- ``_http_load``: an HTTP/1.1 load-generator process (``python -m anyport.bench._http_load``)
  for Streamable HTTP (both eras, JSON and SSE replies) and the 2024-11-05 HTTP+SSE transport,
  and ``LoadClient``, which drives it; the process is ``_http_conn`` (connection and response
  parsing), ``_http_worker`` (one simulated client) and ``_http_jobs`` (the jobs);
- ``_system``: CPU time, memory and CPU placement from /proc; ``_report``: Markdown tables;
  ``_plot``: the latency / req/s PNG (needs matplotlib, which is optional);
- ``_command``: ``anyport bench`` itself.
"""
