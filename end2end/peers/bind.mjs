// A real authoritative DNS server for the browser test: Debian's BIND `named` on 127.0.0.1 at a free port,
// primary for the zone `test.` with dynamic updates by `nsupdate`. Run under `timeout`, so it ends by itself.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

function listening(port) {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

export async function startBind() {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bind-'));
  const port = await freePort();
  writeFileSync(join(dir, 'named.conf'), `options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; };
  pid-file none; session-keyfile "${dir}/session.key"; recursion no; dnssec-validation no; allow-query { 127.0.0.1; }; };
controls { };
zone "test" { type primary; file "${dir}/test.zone"; allow-update { 127.0.0.1; }; check-names ignore; };
`);
  writeFileSync(join(dir, 'test.zone'), '$TTL 1\n@ IN SOA ns.test. admin.test. 1 60 60 600 1\n@ IN NS ns.test.\nns IN A 127.0.0.1\n');
  const child = spawn('timeout', ['300', '/usr/sbin/named', '-g', '-c', join(dir, 'named.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await listening(port))) throw new Error(`named did not listen on ${port}`);
  return {
    addr: `127.0.0.1:${port}`,
    setTxt(name, values) {
      const cmds = [`server 127.0.0.1 ${port}`, 'check-names no', 'zone test.', `update delete ${name}. TXT`,
        ...values.map((v) => `update add ${name}. 1 TXT "${v}"`), 'send', ''].join('\n');
      execFileSync('nsupdate', [], { input: cmds, timeout: 20_000 });
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      // named may still be writing its journal as it exits: retry, and never fail the run over a temp dir.
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch (e) {
        console.error(`e2e: could not remove ${dir}: ${e.message}`);
      }
    },
  };
}
