// A real, standards-compliant OpenID Provider (npm `oidc-provider`) for hoop's end-to-end login
// test: device authorization grant (RFC 8628), refresh tokens, revocation, one public client
// `hoop-cli`, and accounts with a `groups` claim. Loopback only. Test use only: the signing key
// is generated per run, state is in memory, and the library's development login page signs in
// any account below by name (it asks for a password but does not check it).
//
//   node provider.mjs PORT [REDIRECT_URI]
//        -> prints "oidc-provider listening on http://127.0.0.1:PORT"
//   With REDIRECT_URI (the hoop console's {public_url}/auth/callback), the client may also use the
//   authorization code flow with PKCE there (the console's sign-in and its step-up, prompt=login).
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 0);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const consoleRedirect = process.argv[3];

const accounts = {
  alice: { email: 'alice@example.test', name: 'Alice', groups: ['admins', 'developers'] },
  bob: { email: 'bob@example.test', name: 'Bob', groups: ['developers'] },
};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), use: 'sig', alg: 'RS256', kid: `test-${Date.now()}` };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'hoop-cli',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token',
      ...(consoleRedirect ? ['authorization_code'] : [])],
    response_types: consoleRedirect ? ['code'] : [],
    redirect_uris: consoleRedirect ? [consoleRedirect] : [],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [`cookie-${Math.random()}`] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  ttl: { DeviceCode: 600, IdToken: 3600, AccessToken: 3600 },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, name: account.name, groups: account.groups };
      },
    };
  },
  // Skip the consent screen: the test account consents to everything the client asks for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid offline_access email profile groups');
    await grant.save();
    return grant;
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
