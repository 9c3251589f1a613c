#!/usr/bin/env node
// A tiny Streamable HTTP echo server on the official MCP TypeScript SDK v2, for bench/http.py.
//
// The SDK packages are imported by path from tests/interop/peers/ts/node_modules (run `npm ci`
// there first); nothing outside bench/ is changed. The SDK ships no node:http adapter in this
// package set (that is @modelcontextprotocol/node), so a few lines below turn a node:http request
// into a web `Request` and write the web `Response` back, streaming its body (SSE) as it comes.
//
// Routing, per request:
//   - 2026-07-28 traffic (per-request `_meta` envelope)  -> createMcpHandler(factory, {legacy: 'reject'})
//   - 2025-era traffic, --stateless                      -> a fresh server + stateless
//                                                           WebStandardStreamableHTTPServerTransport per request
//   - 2025-era traffic, stateful (default)               -> one transport per session (initialize opens it,
//                                                           Mcp-Session-Id routes to it, DELETE closes it)
// --json-response: JSON replies (enableJsonResponse / responseMode 'json'); otherwise SSE replies.
//
// Usage: node bench/ts_http_server.mjs --port N [--stateless] [--json-response]
//        (serves http://127.0.0.1:N/mcp; prints "listening" on stderr once bound)

import { randomUUID } from 'node:crypto';
import http from 'node:http';

const SDK = '../tests/interop/peers/ts/node_modules/@modelcontextprotocol/server/dist/index.mjs';
const ZOD = '../tests/interop/peers/ts/node_modules/zod/v4/index.js';
const { McpServer, WebStandardStreamableHTTPServerTransport, createMcpHandler, isLegacyRequest } = await import(SDK);
const z = await import(ZOD);

const args = process.argv.slice(2);
const portIndex = args.indexOf('--port');
const port = portIndex >= 0 ? Number(args[portIndex + 1]) : 0;
const stateless = args.includes('--stateless');
const jsonResponse = args.includes('--json-response');

function buildServer() {
    const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });
    server.registerTool(
        'echo',
        { description: 'Echo the text back', inputSchema: z.object({ text: z.string() }) },
        async ({ text }) => ({ content: [{ type: 'text', text }] })
    );
    return server;
}

const modern = createMcpHandler(buildServer, { legacy: 'reject', responseMode: jsonResponse ? 'json' : 'sse' });
/** Stateful legacy sessions: session id -> transport. */
const sessions = new Map();

async function legacyStateless(request, parsedBody) {
    const server = buildServer();
    const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: jsonResponse
    });
    await server.connect(transport);
    const response = await transport.handleRequest(request, { parsedBody });
    return { response, done: () => server.close() };
}

async function legacyStateful(request, parsedBody) {
    const sid = request.headers.get('mcp-session-id');
    if (sid) {
        const transport = sessions.get(sid);
        if (!transport) {
            return { response: Response.json({ jsonrpc: '2.0', error: { code: -32000, message: 'Session not found' } }, { status: 404 }) };
        }
        return { response: await transport.handleRequest(request, { parsedBody }) };
    }
    const server = buildServer();
    const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: jsonResponse,
        onsessioninitialized: id => {
            sessions.set(id, transport);
        },
        onsessionclosed: id => {
            sessions.delete(id);
            server.close();
        }
    });
    await server.connect(transport);
    return { response: await transport.handleRequest(request, { parsedBody }) };
}

async function route(request, parsedBody) {
    if (request.method === 'POST' && !(await isLegacyRequest(request, parsedBody ?? null))) {
        return { response: await modern.fetch(request, { parsedBody }) };
    }
    return stateless ? legacyStateless(request, parsedBody) : legacyStateful(request, parsedBody);
}

async function writeResponse(res, response) {
    const headers = {};
    response.headers.forEach((value, key) => {
        headers[key] = value;
    });
    if (!response.body || !(headers['content-type'] ?? '').startsWith('text/event-stream')) {
        // A whole body (JSON, or none): one write with a Content-Length.
        const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
        if (body) headers['content-length'] = String(body.length);
        res.writeHead(response.status, headers);
        res.end(body);
        return;
    }
    res.writeHead(response.status, headers);
    if (!response.body) {
        res.end();
        return;
    }
    const reader = response.body.getReader();
    res.on('close', () => reader.cancel().catch(() => {}));
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        res.write(value);
    }
    res.end();
}

const httpServer = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', chunk => chunks.push(chunk));
    req.on('end', async () => {
        const raw = Buffer.concat(chunks);
        let parsedBody;
        if (raw.length) {
            try {
                parsedBody = JSON.parse(raw.toString('utf8'));
            } catch {
                parsedBody = undefined; // the SDK answers the parse error itself from the raw body
            }
        }
        const headers = new Headers();
        for (const [key, value] of Object.entries(req.headers)) {
            headers.set(key, Array.isArray(value) ? value.join(', ') : value);
        }
        const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && raw.length > 0;
        const request = new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url}`, {
            method: req.method,
            headers,
            body: hasBody ? raw : undefined
        });
        let done;
        try {
            const routed = await route(request, parsedBody);
            done = routed.done;
            await writeResponse(res, routed.response);
        } catch (error) {
            console.error('[ts-http] request failed:', error);
            if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: String(error) } }));
        } finally {
            if (done) done();
        }
    });
});
httpServer.keepAliveTimeout = 60_000;

httpServer.listen(port, '127.0.0.1', () => {
    console.error(`[ts-http] listening on 127.0.0.1:${httpServer.address().port} stateless=${stateless} json=${jsonResponse}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
        httpServer.close();
        httpServer.closeAllConnections?.();
        modern.close().finally(() => process.exit(0));
        setTimeout(() => process.exit(0), 2000).unref();
    });
}
