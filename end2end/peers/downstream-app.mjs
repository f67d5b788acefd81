// A small, real downstream B2B application that signs its users in through Latchkey, written only against
// Latchkey's public contract: it sends the browser to /api/auth/sso/<org>/login, checks `state` on the way
// back, redeems the one-time SSO token at /api/auth/sso/authenticate (HTTP Basic client credentials), verifies
// the returned session JWT with an independent library (npm jose) against Latchkey's published JWKS, and
// re-checks the Latchkey session on every /me.json, so a session revoked in Latchkey is signed out here at once.
// Env: LATCHKEY_URL, CLIENT_ID, CLIENT_SECRET, ORG_SLUG, optional PORT. Prints "READY <url>" once listening.
import http from 'node:http';
import crypto from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { boundLifetime } from './lifetime.mjs';

const LATCHKEY_URL = (process.env.LATCHKEY_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const { CLIENT_ID = '', CLIENT_SECRET = '', ORG_SLUG = '' } = process.env;
const BASIC = 'Basic ' + Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', LATCHKEY_URL));
const sessions = new Map(); // app_sid -> { email, sessionToken, claims }
let self; // http://127.0.0.1:<port>

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const random = () => crypto.randomBytes(24).toString('base64url');
const cookies = (req) => Object.fromEntries((req.headers.cookie || '').split(';').filter((p) => p.includes('='))
  .map((p) => { const i = p.indexOf('='); return [p.slice(0, i).trim(), decodeURIComponent(p.slice(i + 1).trim())]; }));
const cookie = (name, value, maxAge) => `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}`;
const send = (res, status, body, headers = {}) => {
  const json = typeof body !== 'string';
  res.writeHead(status, { 'content-type': json ? 'application/json' : 'text/html; charset=utf-8', ...headers });
  res.end(json ? JSON.stringify(body) : body);
};
const page = (inner) => `<!doctype html><html><head><meta charset="utf-8"><title>Downstream app</title></head><body>${inner}</body></html>`;

// POST a JSON body to Latchkey with the client's Basic credentials; returns the envelope (or a synthetic failure).
async function latchkey(path, body) {
  try {
    const r = await fetch(`${LATCHKEY_URL}${path}`, {
      method: 'POST', headers: { authorization: BASIC, 'content-type': 'application/json' }, body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const env = await r.json().catch(() => ({}));
    return r.ok && env.success ? env : { success: false, code: env.code || `http_${r.status}`, message: env.message };
  } catch (e) {
    return { success: false, code: 'unreachable', message: String(e) };
  }
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, self);
    const jar = cookies(req);
    if (req.method === 'GET' && url.pathname === '/') {
      const who = sessions.get(jar.app_sid);
      return send(res, 200, page(`<h1>Downstream app</h1><a href="/start">Sign in with SSO</a>`
        + (who ? `<p id="who">Signed in as ${esc(who.email)}</p>` : '')));
    }
    if (req.method === 'GET' && url.pathname === '/start') {
      const state = random();
      const login = new URL(`${LATCHKEY_URL}/api/auth/sso/${encodeURIComponent(ORG_SLUG)}/login`);
      login.search = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: `${self}/callback`, state }).toString();
      return send(res, 302, '', { location: login.toString(), 'set-cookie': cookie('app_state', state, 600) });
    }
    if (req.method === 'GET' && url.pathname === '/callback') {
      const state = url.searchParams.get('state') || '';
      const expected = jar.app_state || '';
      if (!expected || state.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(state), Buffer.from(expected))) {
        return send(res, 400, 'state mismatch', { 'content-type': 'text/plain; charset=utf-8' });
      }
      const clearState = cookie('app_state', '', 0);
      const env = await latchkey('/api/auth/sso/authenticate', { ssoToken: url.searchParams.get('token') || '' });
      if (!env.success) {
        return send(res, 502, page(`<h1>Sign-in failed</h1><p id="error">${esc(env.code)}</p>`), { 'set-cookie': clearState });
      }
      const data = env.data;
      let claims;
      try {
        ({ payload: claims } = await jwtVerify(data.sessionJwt, jwks, { issuer: LATCHKEY_URL, audience: CLIENT_ID }));
        if (claims.sub !== data.member.id) throw new Error(`sub ${claims.sub} is not member ${data.member.id}`);
      } catch (e) {
        return send(res, 502, `JWT verification failed: ${e.message}`, { 'content-type': 'text/plain; charset=utf-8', 'set-cookie': clearState });
      }
      const sid = random();
      sessions.set(sid, { email: data.member.email, sessionToken: data.sessionToken, claims });
      return send(res, 302, '', { location: '/', 'set-cookie': [clearState, cookie('app_sid', sid)] });
    }
    if (req.method === 'GET' && url.pathname === '/me.json') {
      const who = sessions.get(jar.app_sid);
      if (!who) return send(res, 401, {});
      const env = await latchkey('/api/auth/sessions/authenticate', { sessionToken: who.sessionToken });
      if (!env.success) {
        sessions.delete(jar.app_sid);
        return send(res, 401, {}, { 'set-cookie': cookie('app_sid', '', 0) });
      }
      return send(res, 200, { email: who.email, claims: who.claims });
    }
    return send(res, 404, 'not found', { 'content-type': 'text/plain; charset=utf-8' });
  } catch (e) {
    return send(res, 500, `internal error: ${esc(e.message)}`, { 'content-type': 'text/plain; charset=utf-8' });
  }
});
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  self = `http://127.0.0.1:${server.address().port}`;
  console.log(`READY ${self}`);
});
boundLifetime(server);
