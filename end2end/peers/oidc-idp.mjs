// A real OpenID Provider (npm oidc-provider) on 127.0.0.1 for tests. Clients come from OIDC_CLIENTS (JSON list
// of {client_id, client_secret, redirect_uris}). devInteractions login (any password): the login typed becomes
// the account id (the `sub`); the email is the login when it contains '@'.
// Prints "READY <issuer>" once listening.
import http from 'node:http';
import Provider from 'oidc-provider';
import { boundLifetime } from './lifetime.mjs';

const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]').map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ['latchkey-test-cookie-key'] },
    async findAccount(ctx, id) {
      const email = id.includes('@') ? id : `${id}@example.com`;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email, email_verified: true, name: `IdP ${id.split('@')[0]}` };
        },
      };
    },
  });
  server.on('request', provider.callback());
  console.log(`READY ${issuer}`);
});
boundLifetime(server);
