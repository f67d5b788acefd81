// Independent JWT check for the Rust integration tests: verifies a token with npm jose (not our own code)
// against a JWKS URL. Usage: node verify-jwt.mjs <jwksUrl> <issuer> <audience> <jwt>
// Prints exactly one JSON line and exits 0 either way:
//   {"ok":true,"header":{...protected header...},"payload":{...}}   or   {"ok":false,"error":"<jose code or message>"}
// Gives up after 10 s with {"ok":false,"error":"timeout"}.
import { createRemoteJWKSet, jwtVerify } from 'jose';

let done = false;
const finish = (result) => {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
};
const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), 10_000);

try {
  const [jwksUrl, issuer, audience, jwt] = process.argv.slice(2);
  if (!jwksUrl || !issuer || !audience || !jwt) throw new Error('usage: node verify-jwt.mjs <jwksUrl> <issuer> <audience> <jwt>');
  const jwks = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 15_000 }); // longer than our 10 s guard
  const { protectedHeader, payload } = await jwtVerify(jwt, jwks, { issuer, audience, algorithms: ['EdDSA', 'ES256'] });
  finish({ ok: true, header: protectedHeader, payload });
} catch (e) {
  finish({ ok: false, error: e?.code || e?.message || String(e) });
} finally {
  clearTimeout(timer);
}
