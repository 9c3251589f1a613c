// The page of the browser CORS test (test_browser_cors.py), bundled with esbuild for Chromium.
// Served from one loopback origin, it talks to the MCP server on another one (?mcp=<base URL>):
// a tool call over Streamable HTTP in both eras with the official TypeScript SDK client, then the
// 2024-11-05 HTTP+SSE transport with the browser's own EventSource and fetch. What each step gave
// (or the error it met) is written into the DOM as JSON, in <pre id="result">.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const STEP_TIMEOUT_MS = 10_000;
const base = new URL(location.href).searchParams.get('mcp');

function describe(error) {
    if (error instanceof Error) return `${error.name}: ${error.message}${error.cause ? ` (${describe(error.cause)})` : ''}`;
    return `Error: ${String(error)}`;
}

function withTimeout(promise, what) {
    let timer;
    const guard = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    });
    return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

async function step(name, fn, results) {
    try {
        results[name] = await withTimeout(fn(), name);
    } catch (error) {
        results[name] = { error: describe(error) };
    }
}

/** One tools/call over Streamable HTTP; ``era``: "modern" (2026-07-28, stateless) or "legacy" (a session). */
async function callTool(era) {
    const versionNegotiation = era === 'modern' ? { mode: { pin: '2026-07-28' } } : { mode: 'legacy' };
    const client = new Client({ name: 'browser-page', version: '1.0.0' }, { capabilities: {}, versionNegotiation });
    const transport = new StreamableHTTPClientTransport(new URL('/mcp', base));
    await client.connect(transport);
    try {
        const result = await client.callTool({ name: 'echo', arguments: { text: `hello from ${era}` } });
        const out = {
            text: result.content?.[0]?.text ?? null,
            protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
            sessionId: transport.sessionId ?? null
        };
        if (era === 'legacy') {
            await transport.terminateSession(); // DELETE, a preflighted method
            out.terminated = transport.sessionId === undefined;
        }
        return out;
    } finally {
        await client.close();
    }
}

/** HTTP+SSE: EventSource on /sse, initialize POSTed to the endpoint it names, the answer on the stream. */
function legacySSE() {
    return new Promise(resolve => {
        const sseUrl = new URL('/sse', base);
        const source = new EventSource(sseUrl);
        let posted = null;
        const finish = value => {
            source.close();
            resolve(value);
        };
        source.addEventListener('endpoint', async event => {
            const endpoint = new URL(event.data, sseUrl);
            try {
                const response = await fetch(endpoint, {
                    method: 'POST',
                    headers: { 'content-type': 'application/json' },
                    body: JSON.stringify({
                        jsonrpc: '2.0', id: 1, method: 'initialize',
                        params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'browser-page', version: '1' } }
                    })
                });
                posted = response.status;
            } catch (error) {
                finish({ error: describe(error) });
            }
        });
        source.addEventListener('message', event => {
            const message = JSON.parse(event.data);
            if (message.id === 1) finish({ posted, protocolVersion: message.result?.protocolVersion ?? null });
        });
        source.onerror = () => {
            // A refused CORS check fails the connection for good (CLOSED); a reconnection would be CONNECTING.
            if (source.readyState === EventSource.CLOSED) finish({ error: 'EventSource failed (CLOSED)' });
        };
    });
}

/**
 * A server that wants authorization (?auth=1): what a browser client needs to start OAuth. The 401's
 * WWW-Authenticate must be readable across origins (exposed), and the protected-resource metadata it
 * names must be fetchable from the page (RFC 9728, served to any origin).
 */
async function challenge() {
    const response = await fetch(new URL('/mcp', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
    });
    const header = response.headers.get('www-authenticate');
    const metadataUrl = header?.match(/resource_metadata="([^"]+)"/)?.[1] ?? null;
    const metadata = metadataUrl ? await (await fetch(metadataUrl)).json() : null;
    return { status: response.status, challenged: header?.split(' ')[0] ?? null, metadata };
}

async function main() {
    const results = { origin: location.origin };
    if (new URL(location.href).searchParams.get('auth')) {
        await step('challenge', challenge, results);
    } else {
        await step('modern', () => callTool('modern'), results);
        await step('legacy', () => callTool('legacy'), results);
        await step('sse', legacySSE, results);
    }
    const pre = document.createElement('pre');
    pre.id = 'result';
    pre.textContent = JSON.stringify(results);
    document.body.appendChild(pre);
}

main();
