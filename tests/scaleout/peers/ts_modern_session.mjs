#!/usr/bin/env node
// The official TypeScript SDK (2.4.0) in its 2026-07-28 (modern, stateless) mode, through the load balancer.
//
//   node ts_modern_session.mjs --url http://127.0.0.1:PORT/mcp [--mode pin|auto] [--calls 6] [--timeout SECONDS]
//
// versionNegotiation { mode: { pin: '2026-07-28' } } (the connect-time server/discover must offer it;
// --mode auto probes and may fall back, the report's era says which), then tools/list, whoami --calls
// times, count (n=3) with an onprogress callback, and ask: on 2026-07-28 the server answers it with
// input_required; the SDK runs the elicitation/create handler (accept, name "ada") and retries with
// inputResponses and the echoed requestState. Prints ONE JSON object on stdout: era, protocolVersion,
// tools, pids, count, progress, ask, elicitations, sessionIds (every mcp-session-id sent: none is
// expected), http (method and status of every HTTP exchange), errors (transport or protocol errors the
// SDK reported), error (null or "<type>: <message>"). Exits 0 whatever happened; the whole run is
// bounded by --timeout.
//
// The SDK is the one tests/interop/peers/ts installs (make test runs its npm ci); it is imported by
// path because this folder has no node_modules of its own.

import { Client, StreamableHTTPClientTransport } from '../../interop/peers/ts/node_modules/@modelcontextprotocol/client/dist/index.mjs';

// stdout carries the report only.
for (const method of ['log', 'info', 'debug', 'warn', 'trace']) console[method] = (...args) => console.error(...args);

function parseArgs(argv) {
    const opts = { url: undefined, mode: 'pin', calls: 6, timeoutMs: 60_000 };
    for (let i = 0; i < argv.length; i++) {
        const value = () => argv[++i];
        if (argv[i] === '--url') opts.url = value();
        else if (argv[i] === '--mode') opts.mode = value();
        else if (argv[i] === '--calls') opts.calls = Number(value());
        else if (argv[i] === '--timeout') opts.timeoutMs = Number(value()) * 1000;
        else {
            process.stderr.write(`unknown argument ${argv[i]}\n`);
            process.exit(2);
        }
    }
    if (!opts.url || !['pin', 'auto'].includes(opts.mode) || !(opts.calls > 0) || !(opts.timeoutMs > 0)) {
        process.stderr.write('usage: node ts_modern_session.mjs --url URL [--mode pin|auto] [--calls N] [--timeout SECONDS]\n');
        process.exit(2);
    }
    return opts;
}

const opts = parseArgs(process.argv.slice(2));
const report = {
    era: null, protocolVersion: null, tools: null, pids: [], count: null, progress: [], ask: null, elicitations: 0,
    sessionIds: [], http: [], errors: [], error: null
};

let printed = false;
function printAndExit() {
    if (printed) return;
    printed = true;
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

function describe(error) {
    if (error instanceof Error) return `${error.constructor?.name ?? error.name}: ${error.message}`;
    return `Error: ${String(error)}`;
}

function withTimeout(promise, ms, what) {
    let timer;
    const guard = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

const firstText = result => (result?.content ?? []).find(block => block?.type === 'text')?.text ?? null;

async function recordingFetch(input, init) {
    const session = new Headers(init?.headers ?? {}).get('mcp-session-id');
    if (session && !report.sessionIds.includes(session)) report.sessionIds.push(session);
    const response = await fetch(input, init);
    report.http.push([init?.method ?? 'GET', response.status]);
    return response;
}

const probe = { timeoutMs: opts.timeoutMs / 2 };
const client = new Client(
    { name: 'scaleout-ts-modern-session', version: '1.0.0' },
    {
        capabilities: { elicitation: { form: {} } },
        versionNegotiation: opts.mode === 'auto' ? { mode: 'auto', probe } : { mode: { pin: '2026-07-28' }, probe }
    }
);
client.setRequestHandler('elicitation/create', async () => {
    report.elicitations += 1;
    return { action: 'accept', content: { name: 'ada' } };
});
client.onerror = error => report.errors.push(describe(error));

async function main() {
    const transport = new StreamableHTTPClientTransport(new URL(opts.url), { fetch: recordingFetch });
    const reqOpts = { timeout: opts.timeoutMs / 2 };
    await client.connect(transport, reqOpts);
    report.era = client.getProtocolEra() ?? null;
    report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
    report.tools = (await client.listTools(undefined, reqOpts)).tools.map(tool => tool.name);
    for (let i = 0; i < opts.calls; i++) {
        report.pids.push(firstText(await client.callTool({ name: 'whoami', arguments: {} }, reqOpts)));
    }
    const counted = await client.callTool(
        { name: 'count', arguments: { n: 3 } },
        { ...reqOpts, onprogress: p => report.progress.push(p.progress) }
    );
    report.count = firstText(counted);
    report.ask = firstText(await client.callTool({ name: 'ask', arguments: {} }, reqOpts));
    await client.close();
}

withTimeout(main(), opts.timeoutMs, 'the run')
    .catch(error => {
        report.error = describe(error);
        return withTimeout(client.close(), 3_000, 'close').catch(() => {});
    })
    .finally(printAndExit);
