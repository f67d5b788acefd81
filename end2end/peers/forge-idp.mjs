// A deliberately misbehaving OpenID Provider for negative tests: discovery, JWKS, authorize (redirects straight
// back with a code), token (client_secret_basic and PKCE S256 are checked) and userinfo, where the ID token is
// shaped by the current scenario (npm jose signs it, or forges it). POST /scenario {name, sub, email, ...}
// sets the scenario; POST /rotate switches to a new signing key. Prints "READY <issuer>".
import http from 'node:http';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { boundLifetime } from './lifetime.mjs';

const CLIENT_ID = process.env.CLIENT_ID || 'latchkey-test';
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'forge-secret';

const mk = async (kid) => {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwk };
};
const keys = { k1: await mk('k1'), k2: await mk('k2'), evil: await mk('k1') };
let current = keys.k1;
let scenario = { name: 'ok', sub: 'sub-1', email: 'user@example.com', email_verified: true, name_claim: 'Forge User' };
const codes = new Map();
let issuer;

const b64url = (b) => Buffer.from(b).toString('base64url');
const send = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};
const readBody = async (req) => { const c = []; for await (const x of req) c.push(x); return Buffer.concat(c).toString(); };

async function idToken(grant) {
  const now = Math.floor(Date.now() / 1000);
  const s = scenario;
  const claims = {
    iss: s.name === 'wrong_iss' ? 'https://evil.example' : issuer,
    aud: s.name === 'wrong_aud' ? 'someone-else' : s.name === 'azp_mismatch' ? [CLIENT_ID, 'other-client'] : CLIENT_ID,
    sub: s.sub,
    nonce: s.name === 'wrong_nonce' ? 'not-the-nonce' : grant.nonce,
    iat: s.name === 'expired' ? now - 900 : s.name === 'future_iat' ? now + 900 : now,
    exp: s.name === 'expired' ? now - 600 : now + 300,
    name: s.name_claim,
  };
  if (s.name === 'azp_mismatch') claims.azp = 'other-client';
  if (s.hd) claims.hd = s.hd;
  if (!['no_email', 'userinfo_error'].includes(s.name)) {
    claims.email = s.email;
    claims.email_verified = s.name === 'unverified' ? false : s.email_verified;
  }
  if (s.name === 'alg_none') {
    return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
  }
  if (s.name === 'hs256') {
    return new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(CLIENT_SECRET));
  }
  const signer = s.name === 'bad_signature' ? keys.evil : current;
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signer.kid, typ: 'JWT' }).sign(signer.privateKey);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return send(res, 200, {
        issuer: scenario.discovery_issuer || issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        scopes_supported: ['openid', 'email', 'profile'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') return send(res, 200, { keys: [current.jwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const p = url.searchParams;
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, { nonce: p.get('nonce'), challenge: p.get('code_challenge'), method: p.get('code_challenge_method'),
        redirect_uri: p.get('redirect_uri'), client_id: p.get('client_id'), scope: p.get('scope') });
      const back = new URL(p.get('redirect_uri'));
      if (scenario.name === 'denied') {
        back.searchParams.set('error', 'access_denied');
        back.searchParams.set('error_description', 'The user said no');
      } else back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const expected = 'Basic ' + Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64');
      if (req.headers.authorization !== expected) return send(res, 401, { error: 'invalid_client' });
      const form = new URLSearchParams(await readBody(req));
      const grant = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      if (!grant) return send(res, 400, { error: 'invalid_grant', error_description: 'unknown or used code' });
      const verifierHash = crypto.createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
      if (grant.method !== 'S256' || verifierHash !== grant.challenge) return send(res, 400, { error: 'invalid_grant', error_description: 'PKCE failed' });
      if (form.get('redirect_uri') !== grant.redirect_uri) return send(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
      if (scenario.name === 'token_error') return send(res, 400, { error: 'invalid_grant', error_description: 'scenario token_error' });
      return send(res, 200, { access_token: `at-${scenario.sub}`, token_type: 'Bearer', expires_in: 300, id_token: await idToken(grant) });
    }
    if (req.method === 'GET' && url.pathname === '/userinfo') {
      if (req.headers.authorization !== `Bearer at-${scenario.sub}`) return send(res, 401, { error: 'invalid_token' });
      if (scenario.name === 'userinfo_error') return send(res, 500, { error: 'server_error' });
      return send(res, 200, { sub: scenario.sub, email: scenario.email, email_verified: scenario.email_verified });
    }
    if (req.method === 'POST' && url.pathname === '/scenario') {
      scenario = { name: 'ok', sub: 'sub-1', email: 'user@example.com', email_verified: true, name_claim: 'Forge User', ...JSON.parse(await readBody(req)) };
      return send(res, 200, scenario);
    }
    if (req.method === 'POST' && url.pathname === '/rotate') { current = keys.k2; return send(res, 200, { kid: current.kid }); }
    return send(res, 404, { error: 'not_found' });
  } catch (e) {
    return send(res, 500, { error: String(e) });
  }
});
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  console.log(`READY ${issuer}`);
});
boundLifetime(server);
