#!/usr/bin/env node
// Interop fixture server (tests/interop/FIXTURE.md) built on the official MCP
// TypeScript SDK v2 (@modelcontextprotocol/server), served over stdio.
//
// `serveStdio(factory)` decides the era per connection from the opening
// message: an `initialize` request pins a 2025-era (legacy) instance, a
// request carrying the 2026-07-28 `_meta` envelope (e.g. `server/discover`)
// pins a modern one. The same factory serves both.
//
// Server->client interactions (elicitation, sampling, roots) are written once
// in the 2026 `inputRequired(...)` style: on a modern connection they travel
// in-band as `resultType: "input_required"`; on a legacy connection the SDK's
// legacy shim turns them into real `elicitation/create`,
// `sampling/createMessage` and `roots/list` requests.
//
// Usage: node server.mjs          (stdout is the JSON-RPC channel; logs go to stderr)
//        node server.mjs --http PORT [--json]
//
// --http serves Streamable HTTP on http://127.0.0.1:PORT/mcp with the SDK's own HTTP
// pieces: `createMcpHandler(factory, { legacy: 'reject' })` answers 2026-07-28 traffic
// (one fresh instance per request), and 2025-era traffic (found with the SDK's
// `isLegacyRequest`) goes to sessionful `WebStandardStreamableHTTPServerTransport`s, one per
// `initialize` (the composition the SDK documents for keeping sessions next to the modern
// entry). Node's http module is bridged to the web-standard Request/Response the SDK
// speaks; a client that disconnects aborts the request's signal. --json makes both legs
// answer with application/json instead of SSE.

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import {
    McpServer,
    ResourceTemplate,
    WebStandardStreamableHTTPServerTransport,
    completable,
    createMcpHandler,
    inputRequired,
    inputResponse,
    isLegacyRequest
} from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod/v4';

// stdout is the JSON-RPC channel: route every console method to stderr.
for (const method of ['log', 'info', 'debug', 'warn', 'trace']) console[method] = (...args) => console.error(...args);

const NAME_SCHEMA = {
    type: 'object',
    properties: { name: { type: 'string' } },
    required: ['name']
};

const PROMPT_NAMES = ['alice', 'bob', 'carol'];
const ITEM_IDS = ['1', '2', '3'];

const text = value => ({ content: [{ type: 'text', text: value }] });

function sleepCancellable(ms, signal) {
    return new Promise((resolve, reject) => {
        if (signal?.aborted) {
            reject(signal.reason ?? new Error('cancelled'));
            return;
        }
        const timer = setTimeout(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
        }, ms);
        function onAbort() {
            clearTimeout(timer);
            reject(signal.reason ?? new Error('cancelled'));
        }
        signal?.addEventListener('abort', onAbort, { once: true });
    });
}

function buildServer(ctx) {
    const server = new McpServer(
        { name: 'interop-fixture', version: '1.0.0' },
        {
            // tools/resources/prompts/completions are advertised by the register* calls;
            // logging must be declared (it also installs logging/setLevel on the legacy era).
            capabilities: { logging: {} },
            instructions: 'MCP interop fixture server (TypeScript SDK v2).'
        }
    );
    console.error(`[ts-fixture-server] connection pinned to the ${ctx?.era ?? 'unknown'} era`);

    server.registerTool(
        'echo',
        { description: 'Echo the text back', inputSchema: z.object({ text: z.string() }) },
        async ({ text: value }) => text(value)
    );

    server.registerTool(
        'add',
        {
            description: 'Add two integers',
            inputSchema: z.object({ a: z.number().int(), b: z.number().int() }),
            outputSchema: z.object({ result: z.number().int() })
        },
        async ({ a, b }) => {
            const structured = { result: a + b };
            return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        }
    );

    server.registerTool(
        'weather',
        {
            description: 'Current weather for a city (fixed)',
            inputSchema: z.object({ city: z.string() }),
            outputSchema: z.object({ city: z.string(), temp_c: z.number() })
        },
        async ({ city }) => {
            const structured = { city, temp_c: 21.5 };
            return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        }
    );

    server.registerTool(
        'progress',
        { description: 'Report progress 1..steps', inputSchema: z.object({ steps: z.number().int() }) },
        async ({ steps }, toolCtx) => {
            const progressToken = toolCtx.mcpReq._meta?.progressToken;
            for (let i = 1; i <= steps; i++) {
                if (progressToken !== undefined) {
                    await toolCtx.mcpReq.notify({
                        method: 'notifications/progress',
                        params: { progressToken, progress: i, total: steps }
                    });
                }
            }
            return text(`done ${steps}`);
        }
    );

    server.registerTool(
        'log',
        {
            description: 'Send one notifications/message',
            inputSchema: z.object({ message: z.string(), level: z.string().default('info') })
        },
        async ({ message, level }, toolCtx) => {
            await toolCtx.mcpReq.log(level, message, 'fixture');
            return text('logged');
        }
    );

    // Tools without an inputSchema get the context as their only argument.
    server.registerTool('ask_name', { description: 'Ask the user for their name (form elicitation)' }, async toolCtx => {
        const answer = inputResponse(toolCtx.mcpReq.inputResponses, 'name');
        if (answer.kind === 'elicit') {
            if (answer.action === 'accept') return text(`Hello, ${answer.content?.name}`);
            return text(answer.action === 'decline' ? 'declined' : 'cancelled');
        }
        return inputRequired({
            inputRequests: {
                name: inputRequired.elicit({ mode: 'form', message: 'What is your name?', requestedSchema: NAME_SCHEMA })
            }
        });
    });

    server.registerTool(
        'summarize',
        { description: 'Summarize via client sampling', inputSchema: z.object({ text: z.string() }) },
        async ({ text: value }, toolCtx) => {
            const answer = inputResponse(toolCtx.mcpReq.inputResponses, 'summary');
            if (answer.kind === 'sampling') {
                const content = answer.result.content;
                const block = Array.isArray(content) ? content.find(c => c.type === 'text') : content;
                return text(block?.type === 'text' ? block.text : '');
            }
            return inputRequired({
                inputRequests: {
                    summary: inputRequired.createMessage({
                        messages: [{ role: 'user', content: { type: 'text', text: value } }],
                        maxTokens: 50
                    })
                }
            });
        }
    );

    server.registerTool('list_roots', { description: 'List the client roots' }, async toolCtx => {
        const answer = inputResponse(toolCtx.mcpReq.inputResponses, 'roots');
        if (answer.kind === 'roots') return text(answer.roots.map(root => root.uri).join(','));
        return inputRequired({ inputRequests: { roots: inputRequired.listRoots() } });
    });

    server.registerTool(
        'sleep',
        { description: 'Sleep (cancellable)', inputSchema: z.object({ seconds: z.number() }) },
        async ({ seconds }, toolCtx) => {
            await sleepCancellable(seconds * 1000, toolCtx.mcpReq.signal);
            return text('slept');
        }
    );

    server.registerTool('fail', { description: 'Always fails' }, async () => {
        throw new Error('boom');
    });

    server.registerResource('greeting', 'res://greeting', { mimeType: 'text/plain' }, async () => ({
        contents: [{ uri: 'res://greeting', mimeType: 'text/plain', text: 'Hello, world' }]
    }));

    server.registerResource(
        'item',
        new ResourceTemplate('res://items/{id}', {
            list: undefined,
            complete: { id: value => ITEM_IDS.filter(id => id.startsWith(value ?? '')) }
        }),
        { mimeType: 'text/plain' },
        async (uri, { id }) => ({
            contents: [{ uri: uri.href, mimeType: 'text/plain', text: `item ${id}` }]
        })
    );

    server.registerPrompt(
        'greet',
        {
            description: 'Greet someone',
            argsSchema: z.object({
                name: completable(z.string(), value => PROMPT_NAMES.filter(name => name.startsWith(value ?? '')))
            })
        },
        ({ name }) => ({
            messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}` } }]
        })
    );

    return server;
}

function option(name) {
    const at = process.argv.indexOf(name);
    return at === -1 ? undefined : process.argv[at + 1];
}

const httpPort = option('--http');
const onerror = error => console.error('[ts-fixture-server] error:', error?.message ?? error);

if (httpPort === undefined) {
    const handle = serveStdio(buildServer, { onerror });
    const shutdown = () => {
        handle.close().finally(() => process.exit(0));
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
} else {
    serveHttp(Number(httpPort), process.argv.includes('--json'));
}

function serveHttp(port, json) {
    const modern = createMcpHandler(buildServer, { legacy: 'reject', responseMode: json ? 'json' : 'sse', onerror });
    const sessions = new Map();

    async function legacy(request) {
        const sid = request.headers.get('mcp-session-id');
        if (sid) {
            const transport = sessions.get(sid);
            if (transport) return transport.handleRequest(request);
            return Response.json(
                { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } },
                { status: 404 }
            );
        }
        const transport = new WebStandardStreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            enableJsonResponse: json,
            onsessioninitialized: id => sessions.set(id, transport),
            onsessionclosed: id => sessions.delete(id)
        });
        await buildServer({ era: 'legacy' }).connect(transport);
        return transport.handleRequest(request);
    }

    const server = createServer(async (req, res) => {
        const abort = new AbortController();
        res.on('close', () => {
            if (!res.writableFinished) abort.abort(new Error('client disconnected'));
        });
        try {
            if (new URL(req.url, 'http://127.0.0.1').pathname !== '/mcp') {
                res.writeHead(404).end();
                return;
            }
            const chunks = [];
            for await (const chunk of req) chunks.push(chunk);
            const headers = new Headers();
            for (const [name, value] of Object.entries(req.headers)) {
                if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
            }
            const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
            const request = new Request(`http://127.0.0.1:${port}${req.url}`, {
                method: req.method,
                headers,
                body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
                signal: abort.signal
            });
            const response = (await isLegacyRequest(request)) ? await legacy(request) : await modern.fetch(request);
            const out = {};
            response.headers.forEach((value, name) => {
                out[name] = value;
            });
            res.writeHead(response.status, out);
            if (response.body) {
                const reader = response.body.getReader();
                abort.signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
                for (;;) {
                    const { done, value } = await reader.read();
                    if (done) break;
                    res.write(value);
                }
            }
            res.end();
        } catch (error) {
            if (!abort.signal.aborted) onerror(error);
            if (!res.headersSent) res.writeHead(500);
            res.end();
        }
    });
    server.listen(port, '127.0.0.1', () => console.error(`[ts-fixture-server] listening on http://127.0.0.1:${port}/mcp`));
    const shutdown = () => {
        server.close();
        server.closeAllConnections?.();
        Promise.allSettled([modern.close(), ...[...sessions.values()].map(t => t.close())]).finally(() => process.exit(0));
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
}
