#!/usr/bin/env node
// The official TypeScript SDK client (@modelcontextprotocol/client, from tests/interop/peers/ts)
// with its own OAuth implementation against an anyport server: discovery from the 401 challenge,
// dynamic registration, PKCE, the authorization code (a browser stand-in follows the AS redirects),
// then a scoped tool that needs a step-up.
//
//   (cd tests/interop/peers/ts && node ../../../auth/ts_oauth_client.mjs http://127.0.0.1:PORT/mcp)
//
// Prints one JSON line: {"whoami": ..., "write": ..., "after": ..., "authorizations": N}.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

for (const method of ['log', 'info', 'debug', 'warn', 'trace']) console[method] = (...args) => console.error(...args);

const sdk = await import(pathToFileURL(path.join(process.cwd(), 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);
const { Client, StreamableHTTPClientTransport, UnauthorizedError } = sdk;

const url = new URL(process.argv[2]);
const REDIRECT = 'http://127.0.0.1:9/callback';
const store = {};
let authorizations = 0;
let pendingCode;

async function followToRedirect(href) {
    const cookies = new Map();
    for (let hop = 0; hop < 10; hop++) {
        const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        const res = await fetch(href, { redirect: 'manual', headers: cookie ? { cookie } : {} });
        for (const line of res.headers.getSetCookie()) {
            const [pair, ...attrs] = line.split(';');
            const [name, ...value] = pair.split('=');
            if (attrs.some(a => /expires=Thu, 01 Jan 1970/i.test(a))) cookies.delete(name.trim());
            else cookies.set(name.trim(), value.join('='));
        }
        const location = res.headers.get('location');
        if (!location) throw new Error(`the authorization server answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
        href = new URL(location, href).href;
        if (href.startsWith(REDIRECT)) {
            const params = new URL(href).searchParams;
            if (!params.get('code')) throw new Error(`no code in ${href}`);
            return params; // code, state and iss (RFC 9207): finishAuth checks them
        }
    }
    throw new Error('too many redirects');
}

const provider = {
    get redirectUrl() {
        return REDIRECT;
    },
    get clientMetadata() {
        return {
            client_name: 'mcp-typescript-sdk', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'], token_endpoint_auth_method: 'none',
        };
    },
    clientInformation: () => store.client,
    saveClientInformation: info => { store.client = info; },
    tokens: () => store.tokens,
    saveTokens: tokens => { store.tokens = tokens; },
    saveCodeVerifier: verifier => { store.verifier = verifier; },
    codeVerifier: () => store.verifier,
    saveDiscoveryState: state => { store.discovery = state; },
    discoveryState: () => store.discovery,
    redirectToAuthorization: async authorizationUrl => {
        authorizations += 1;
        pendingCode = await followToRedirect(authorizationUrl.href);
    },
};

let transport;
async function connect() {
    for (let attempt = 0; attempt < 2; attempt++) {
        transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
        const client = new Client({ name: 'mcp-typescript-sdk', version: '1.0.0' });
        try {
            await client.connect(transport);
            return client;
        } catch (err) {
            if (!(err instanceof UnauthorizedError) || !pendingCode) throw err;
            const code = pendingCode;
            pendingCode = undefined;
            await transport.finishAuth(code);
        }
    }
    throw new Error('could not connect');
}

async function authorized(call) {
    try {
        return await call();
    } catch (err) {
        if (!(err instanceof UnauthorizedError) || !pendingCode) throw err;
        const code = pendingCode;
        pendingCode = undefined;
        await transport.finishAuth(code);
        return await call();
    }
}

const client = await connect();
const whoami = (await authorized(() => client.callTool({ name: 'whoami', arguments: {} }))).structuredContent;
const wrote = await authorized(() => client.callTool({ name: 'write', arguments: { text: 'hello' } }));
const after = (await authorized(() => client.callTool({ name: 'whoami', arguments: {} }))).structuredContent;
await client.close();
process.stdout.write(JSON.stringify({ whoami, write: wrote.content[0].text, after, authorizations }) + '\n');
