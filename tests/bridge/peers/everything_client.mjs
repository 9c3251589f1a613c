#!/usr/bin/env node
// Drives the reference server (@modelcontextprotocol/server-everything) through a URL with the official
// TypeScript SDK client and prints one JSON report on stdout.
//   node everything_client.mjs --url URL [--era legacy|modern]
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

for (const method of ['log', 'info', 'debug', 'warn', 'trace']) console[method] = (...args) => console.error(...args);

const args = process.argv.slice(2);
const url = args[args.indexOf('--url') + 1];
const era = args.includes('--era') ? args[args.indexOf('--era') + 1] : 'legacy';
const versionNegotiation = era === 'modern' ? { mode: { pin: '2026-07-28' } } : { mode: 'legacy' };
const client = new Client(
    { name: 'bridge-test-ts', version: '1.0.0' },
    { capabilities: { sampling: {}, roots: { listChanged: false } }, versionNegotiation }
);
client.setRequestHandler('sampling/createMessage', async () => ({
    role: 'assistant', model: 'bridge-test', content: { type: 'text', text: 'sampled' }, stopReason: 'endTurn'
}));
client.setRequestHandler('roots/list', async () => ({ roots: [{ uri: 'file:///tmp/bridge-root', name: 'root' }] }));
const text = r => r.content.filter(b => b.type === 'text').map(b => b.text).join('');
const timer = setTimeout(() => { process.stderr.write('timed out\n'); process.exit(3); }, 60_000);
const report = {};
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
report.era = client.getProtocolEra() ?? null;
report.serverName = client.getServerVersion()?.name ?? null;
report.tools = (await client.listTools()).tools.map(t => t.name).sort();
report.echo = text(await client.callTool({ name: 'echo', arguments: { message: 'through the bridge' } }));
const progress = [];
const long = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
    { onprogress: p => progress.push(p.progress) }
);
report.long = { text: text(long), progress };
report.sampling = text(await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 10 } }));
report.roots = text(await client.callTool({ name: 'get-roots-list', arguments: {} }));
await client.close();
clearTimeout(timer);
process.stdout.write(JSON.stringify(report) + '\n');
