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

import {
    McpServer,
    ResourceTemplate,
    completable,
    inputRequired,
    inputResponse
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

const handle = serveStdio(buildServer, {
    onerror: error => console.error('[ts-fixture-server] error:', error?.message ?? error)
});

const shutdown = () => {
    handle.close().finally(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
