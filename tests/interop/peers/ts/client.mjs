#!/usr/bin/env node
// Interop fixture client (tests/interop/FIXTURE.md) built on the official MCP
// TypeScript SDK v2 (@modelcontextprotocol/client).
//
//   node client.mjs --era legacy|modern|auto [--protocol-version V] [--probe-in-place]
//                   [--step-timeout SECONDS] [--total-timeout SECONDS] -- COMMAND ARGS...
//   node client.mjs --era legacy|modern|auto [--protocol-version V] --url URL
//
// Runs every report step of FIXTURE.md against one server and prints ONE JSON
// object on stdout; exits 0 whatever the steps did (failures go into the report).
//
// Eras:
//   legacy  -> the 2025 `initialize` handshake (SDK default). --protocol-version
//              V makes V the only version offered (default: SDK's 2025-11-25).
//   modern  -> `versionNegotiation: { mode: { pin: V } }` (V default 2026-07-28):
//              server/discover must offer V; no fallback.
//   auto    -> `versionNegotiation: { mode: 'auto' }`: probe, fall back to legacy.
// On stdio the SDK runs the server/discover probe on a short-lived SIBLING
// process spawned from the same command; the session process never sees
// server/discover. --probe-in-place uses a trivial StdioClientTransport
// subclass, which makes the SDK probe on the session process itself.

import { Client, StreamableHTTPClientTransport, LOG_LEVEL_META_KEY } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

// stdout is reserved (the JSON report / the JSON-RPC channel). The SDK writes some diagnostics
// with console.debug (e.g. "listTools() called but server does not advertise tools"), which
// Node sends to stdout: route every console method to stderr.
for (const method of ['log', 'info', 'debug', 'warn', 'trace']) console[method] = (...args) => console.error(...args);

const DEFAULT_STEP_TIMEOUT_MS = 10_000;
const DEFAULT_TOTAL_TIMEOUT_MS = 120_000;

function usage(message) {
    process.stderr.write(
        `${message ? `error: ${message}\n` : ''}usage: node client.mjs --era legacy|modern|auto [--protocol-version V] ` +
            `[--probe-in-place] [--step-timeout S] [--total-timeout S] (--url URL | -- COMMAND ARGS...)\n`
    );
    process.exit(2);
}

function parseArgs(argv) {
    const opts = {
        era: undefined,
        protocolVersion: undefined,
        url: undefined,
        probeInPlace: false,
        stepTimeoutMs: DEFAULT_STEP_TIMEOUT_MS,
        totalTimeoutMs: DEFAULT_TOTAL_TIMEOUT_MS,
        command: undefined,
        args: []
    };
    let i = 0;
    const value = name => {
        if (i + 1 >= argv.length) usage(`${name} needs a value`);
        return argv[++i];
    };
    for (; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '--') {
            opts.command = argv[i + 1];
            opts.args = argv.slice(i + 2);
            break;
        } else if (arg === '--era') opts.era = value(arg);
        else if (arg === '--protocol-version') opts.protocolVersion = value(arg);
        else if (arg === '--url') opts.url = value(arg);
        else if (arg === '--probe-in-place') opts.probeInPlace = true;
        else if (arg === '--step-timeout') opts.stepTimeoutMs = Number(value(arg)) * 1000;
        else if (arg === '--total-timeout') opts.totalTimeoutMs = Number(value(arg)) * 1000;
        else if (arg === '-h' || arg === '--help') usage();
        else usage(`unknown argument ${arg}`);
    }
    if (!['legacy', 'modern', 'auto'].includes(opts.era)) usage('--era must be legacy, modern or auto');
    if (!opts.url && !opts.command) usage('give --url URL or -- COMMAND ARGS...');
    if (!(opts.stepTimeoutMs > 0) || !(opts.totalTimeoutMs > 0)) usage('timeouts must be positive numbers');
    return opts;
}

/** A StdioClientTransport subclass: the SDK probes subclasses in place (no sibling process). */
class InPlaceStdioClientTransport extends StdioClientTransport {}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------
// Report plumbing: one JSON object on stdout, printed exactly once.
// ---------------------------------------------------------------------------
const report = { era: null, protocolVersion: null, serverName: null };
let printed = false;
function printReportAndExit(code = 0) {
    if (printed) return;
    printed = true;
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(code));
}

function describe(error) {
    if (error instanceof Error) {
        const type = error.constructor?.name && error.constructor.name !== 'Object' ? error.constructor.name : error.name;
        return `${type}: ${error.message}`;
    }
    return `Error: ${String(error)}`;
}

function withTimeout(promise, ms, what) {
    let timer;
    const guard = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Run one report step: its value, or {"error": "<type>: <message>"}; never throws. */
async function step(name, fn) {
    try {
        report[name] = await withTimeout(Promise.resolve().then(fn), opts.stepTimeoutMs, `step ${name}`);
    } catch (error) {
        report[name] = { error: describe(error) };
    }
}

// `client` is created below; the whole-run guard closes it (reaping a stdio child) before printing.
let client;
const totalTimer = setTimeout(() => {
    report.aborted = `whole run exceeded ${opts.totalTimeoutMs} ms`;
    const closing = client ? client.close() : Promise.resolve();
    withTimeout(closing, 3_000, 'close')
        .catch(() => {})
        .finally(() => printReportAndExit(0));
}, opts.totalTimeoutMs);
totalTimer.unref?.();

// ---------------------------------------------------------------------------
// The client and what it answers (FIXTURE.md "What fixture clients answer").
// ---------------------------------------------------------------------------
const FIXTURE_ROOTS = [{ uri: 'file:///tmp/fixture-root', name: 'root' }];

function versionNegotiation() {
    if (opts.era === 'modern') {
        return { mode: { pin: opts.protocolVersion ?? '2026-07-28' }, probe: { timeoutMs: opts.stepTimeoutMs } };
    }
    if (opts.era === 'auto') return { mode: 'auto', probe: { timeoutMs: opts.stepTimeoutMs } };
    return { mode: 'legacy' };
}

const clientOptions = {
    capabilities: {
        elicitation: { form: {} },
        sampling: {},
        roots: { listChanged: false }
    },
    versionNegotiation: versionNegotiation()
};
if (opts.protocolVersion && opts.era !== 'modern') {
    // Legacy: the one version `initialize` offers. Auto: the version list the probe/fallback uses.
    clientOptions.supportedProtocolVersions = [opts.protocolVersion];
}

client = new Client({ name: 'interop-fixture-client-ts', version: '1.0.0' }, clientOptions);

client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'Ada' } }));

client.setRequestHandler('sampling/createMessage', async request => {
    const firstUser = request.params.messages.find(message => message.role === 'user');
    const blocks = firstUser ? (Array.isArray(firstUser.content) ? firstUser.content : [firstUser.content]) : [];
    const firstText = blocks.find(block => block?.type === 'text')?.text ?? '';
    return {
        role: 'assistant',
        model: 'fixture-model',
        content: { type: 'text', text: `sampled: ${firstText}` },
        stopReason: 'endTurn'
    };
});

client.setRequestHandler('roots/list', async () => ({ roots: FIXTURE_ROOTS }));

// Log notifications are collected per call; `logSink` is swapped in by the log step.
let logSink = undefined;
client.setNotificationHandler('notifications/message', notification => {
    const { level, logger, data } = notification.params;
    logSink?.push({ level, logger, data });
});

// Progress: the SDK dispatches notifications on a microtask but responses synchronously,
// so progress notifications that arrive in the same stdio chunk as the tools/call response
// reach `onprogress` after the handler was retired ("unknown token"; SDK issue
// modelcontextprotocol/typescript-sdk#2580; reproduced with 2.4.0). The report therefore reads the
// progress notifications themselves (in wire order) and still forwards each one to the
// SDK's own progress dispatch so `onprogress` keeps working as the SDK intends.
let progressSink = undefined;
client.setNotificationHandler('notifications/progress', notification => {
    const { progressToken, progress, total } = notification.params;
    progressSink?.push({ progressToken, progress, total });
    if (typeof client._onprogress === 'function') client._onprogress(notification);
});

client.onerror = error => process.stderr.write(`[ts-fixture-client] transport/protocol error: ${describe(error)}\n`);

// ---------------------------------------------------------------------------
// Helpers for reading results.
// ---------------------------------------------------------------------------
const reqOpts = extra => ({ timeout: opts.stepTimeoutMs, maxTotalTimeout: opts.stepTimeoutMs, ...extra });

function firstText(result) {
    const block = (result?.content ?? []).find(item => item?.type === 'text');
    return block?.text;
}

function allText(result) {
    return (result?.content ?? [])
        .filter(item => item?.type === 'text')
        .map(item => item.text)
        .join('\n');
}

function callTool(name, args, extra) {
    return client.callTool({ name, arguments: args }, reqOpts(extra));
}

function errorCodeOf(error) {
    return typeof error?.code === 'number' ? error.code : undefined;
}

// ---------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------
async function main() {
    const transport = opts.url
        ? new StreamableHTTPClientTransport(new URL(opts.url))
        : new (opts.probeInPlace ? InPlaceStdioClientTransport : StdioClientTransport)({
              command: opts.command,
              args: opts.args,
              stderr: 'inherit'
          });

    try {
        await withTimeout(client.connect(transport, { timeout: opts.stepTimeoutMs }), 2 * opts.stepTimeoutMs, 'connect');
    } catch (error) {
        report.connect = { error: describe(error) };
        await withTimeout(client.close(), 5_000, 'close').catch(() => {});
        return;
    }

    const era = client.getProtocolEra() ?? null;
    report.era = era;
    report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
    report.serverName = client.getServerVersion()?.name ?? null;

    await step('tools', async () => {
        const { tools } = await client.listTools(undefined, reqOpts());
        return tools.map(tool => tool.name).sort();
    });

    await step('echo', async () => {
        const result = await callTool('echo', { text: 'hello' });
        return { text: firstText(result), isError: result.isError === true };
    });

    await step('add', async () => {
        const result = await callTool('add', { a: 2, b: 3 });
        return { structuredContent: result.structuredContent, text: firstText(result), isError: result.isError === true };
    });

    await step('weather', async () => {
        const result = await callTool('weather', { city: 'Paris' });
        return { structuredContent: result.structuredContent, isError: result.isError === true };
    });

    await step('progress', async () => {
        const seen = [];
        const viaCallback = [];
        progressSink = seen;
        try {
            const result = await callTool('progress', { steps: 3 }, { onprogress: p => viaCallback.push([p.progress, p.total]) });
            // Only this call is in flight: keep the notifications carrying its token (the first one seen).
            const token = seen[0]?.progressToken;
            const events = seen.filter(n => n.progressToken === token).map(n => [n.progress, n.total]);
            if (viaCallback.length !== events.length) {
                process.stderr.write(
                    `[ts-fixture-client] progress: SDK onprogress saw ${JSON.stringify(viaCallback)}, wire had ${JSON.stringify(events)}\n`
                );
            }
            return { text: firstText(result), events };
        } finally {
            progressSink = undefined;
        }
    });

    await step('log', async () => {
        const messages = [];
        let extraParams = {};
        if (era === 'modern') {
            // 2026-07-28: the level is a per-request `_meta` envelope key (the SDK does not attach it itself).
            extraParams = { _meta: { [LOG_LEVEL_META_KEY]: 'debug' } };
        } else {
            await client.setLoggingLevel('debug', reqOpts());
        }
        logSink = messages;
        try {
            const result = await client.callTool(
                { name: 'log', arguments: { message: 'hi', level: 'warning' }, ...extraParams },
                reqOpts()
            );
            return { text: firstText(result), messages };
        } finally {
            logSink = undefined;
        }
    });

    await step('ask_name', async () => ({ text: firstText(await callTool('ask_name', {})) }));

    await step('summarize', async () => ({ text: firstText(await callTool('summarize', { text: 'hello' })) }));

    await step('list_roots', async () => ({ text: firstText(await callTool('list_roots', {})) }));

    await step('fail', async () => {
        const result = await callTool('fail', {});
        return { isError: result.isError === true, text: allText(result) };
    });

    await step('unknown_tool', async () => {
        try {
            const result = await callTool('no_such_tool', {});
            return { isError: result.isError === true, text: allText(result) };
        } catch (error) {
            const code = errorCodeOf(error);
            if (code === undefined) throw error;
            return { errorCode: code };
        }
    });

    await step('cancel', async () => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort('fixture client cancelled the call'), 300);
        let cancelled = false;
        try {
            await callTool('sleep', { seconds: 30 }, { signal: controller.signal, timeout: 35_000, maxTotalTimeout: 35_000 });
        } catch (error) {
            cancelled = controller.signal.aborted;
            if (!cancelled) throw error;
        } finally {
            clearTimeout(timer);
        }
        const after = firstText(await callTool('echo', { text: 'still-alive' }));
        return { cancelled, after };
    });

    await step('resources', async () => {
        const { resources } = await client.listResources(undefined, reqOpts());
        return resources.map(resource => resource.uri).sort();
    });

    await step('read', async () => {
        const { contents } = await client.readResource({ uri: 'res://greeting' }, reqOpts());
        return { text: contents[0]?.text, mimeType: contents[0]?.mimeType };
    });

    await step('templates', async () => {
        const { resourceTemplates } = await client.listResourceTemplates(undefined, reqOpts());
        return resourceTemplates.map(template => template.uriTemplate).sort();
    });

    await step('read_template', async () => {
        const { contents } = await client.readResource({ uri: 'res://items/42' }, reqOpts());
        return { text: contents[0]?.text };
    });

    await step('prompts', async () => {
        const { prompts } = await client.listPrompts(undefined, reqOpts());
        return prompts.map(prompt => prompt.name).sort();
    });

    await step('prompt', async () => {
        const { messages } = await client.getPrompt({ name: 'greet', arguments: { name: 'Bob' } }, reqOpts());
        return {
            messages: messages.map(message => ({
                role: message.role,
                text: message.content?.type === 'text' ? message.content.text : undefined
            }))
        };
    });

    await step('complete_prompt', async () => {
        const { completion } = await client.complete(
            { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'name', value: 'a' } },
            reqOpts()
        );
        return completion.values;
    });

    await step('complete_resource', async () => {
        const { completion } = await client.complete(
            { ref: { type: 'ref/resource', uri: 'res://items/{id}' }, argument: { name: 'id', value: '2' } },
            reqOpts()
        );
        return completion.values;
    });

    await withTimeout(client.close(), 5_000, 'close').catch(error =>
        process.stderr.write(`[ts-fixture-client] close: ${describe(error)}\n`)
    );
}

main()
    .catch(error => {
        report.fatal = { error: describe(error) };
    })
    .finally(() => printReportAndExit(0));
