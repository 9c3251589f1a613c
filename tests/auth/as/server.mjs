#!/usr/bin/env node
// A real OAuth 2.1 authorization server for the end-to-end auth tests: node-oidc-provider,
// configured for MCP (dynamic client registration, PKCE S256, RFC 8707 resource indicators with
// JWT access tokens whose audience is the resource, introspection and revocation).
//
//   node server.mjs --port 0 --scopes "tools.read tools.write" [--user alice]
//
// Prints one JSON line {"issuer": ..., "jwks_uri": ...} on stdout once listening. There is no
// login page: the interaction endpoint signs the test user in and grants the scopes the client
// asked for (on the resources it named), as a user clicking "allow" would.
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), [])
);
const scopes = (args.scopes || 'tools.read tools.write').split(/\s+/).filter(Boolean);
const user = args.user || 'alice';

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: 'as-key-1', alg: 'ES256', use: 'sig' };

const server = http.createServer();
await new Promise(resolve => server.listen(Number(args.port || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
    jwks: { keys: [signing] },
    scopes: ['openid', 'offline_access', ...scopes],
    clientDefaults: {
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
    },
    pkce: { required: () => true },
    cookies: { keys: ['anyport-test-only'] },
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // A registered client may later ask for any scope of this server (step-up, A-28), whatever
    // `scope` it registered with: the SDK clients register with the first scope they ask for.
    extraClientMetadata: {
        properties: ['scope'],
        validator: (ctx, key, value, metadata) => {
            if (key === 'scope') metadata.scope = ['openid', 'offline_access', ...scopes].join(' ');
        },
    },
    features: {
        devInteractions: { enabled: false },
        registration: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
            enabled: true,
            defaultResource: (ctx, client, oneOf) => (oneOf ? oneOf[0] : undefined),
            useGrantedResource: () => true,
            getResourceServerInfo: (ctx, resource) => ({
                scope: scopes.join(' '),
                audience: resource,
                accessTokenTTL: 600,
                accessTokenFormat: 'jwt',
                jwt: { sign: { alg: 'ES256' } },
            }),
        },
    },
});
provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));

const callback = provider.callback();
server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/?]+)/.exec(req.url);
    if (!match) return callback(req, res);
    try {
        const details = await provider.interactionDetails(req, res);
        if (process.env.AS_DEBUG) console.error('interaction', JSON.stringify(details.prompt), details.grantId, JSON.stringify(details.params));
        const grant = details.grantId
            ? await provider.Grant.find(details.grantId)
            : new provider.Grant({ accountId: user, clientId: details.params.client_id });
        const { missingOIDCScope = [], missingResourceScopes: missing = {} } = details.prompt.details;
        if (missingOIDCScope.length) grant.addOIDCScope(missingOIDCScope.join(' '));
        for (const [resource, wanted] of Object.entries(missing)) grant.addResourceScope(resource, wanted.join(' '));
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { login: { accountId: user }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (err) {
        console.error('interaction failed', err);
        res.statusCode = 500;
        res.end(String(err));
    }
});

process.stdout.write(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }) + '\n');
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
