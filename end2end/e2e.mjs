// Browser test: Debian's Chromium via playwright-core against the real server, started here on a free port with
// its own SQLite database. Sign up, create an org, create an API key in the console (its Copy button works only
// once the WASM has hydrated the page), then call the REST API with that key and find the org. Then connect a
// real OpenID Provider (npm oidc-provider, started here) on the Identity provider page, test it, and sign a new
// Then add a domain on the Domains page, publish its TXT record in a real BIND (started here) and watch the
// page turn it verified by itself (the IdP speaks only for verified domains); an email at that domain typed on
// the sign-in page goes to the IdP; a new member signs in through the org's login URL and the IdP's login form
// and the owner sees the JIT member in Members. A password sign-up at that domain is refused with the way to
// SSO. With auto-join on approval, an IdP sign-in files a request; the owner approves it on Members and the new
// member gets in.
// Then the owner enrols TOTP and turns on "require a second factor"; a member who signs in through the IdP is
// held at the MFA page, enrols (the test computes codes from the shown key) and reaches the console; the owner
// revokes that member's session on the Sessions page and the member's browser is signed out.
import { chromium } from 'playwright-core';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { startBind } from './peers/bind.mjs';
import { totp } from './peers/totp.mjs';

const root = resolve(import.meta.dirname, '..');
const bin = process.env.LATCHKEY_BIN || join(root, 'target/debug/latchkey');
const siteRoot = process.env.LEPTOS_SITE_ROOT || join(root, 'target/site');
const work = mkdtempSync(join(tmpdir(), 'latchkey-e2e-'));
const deadline = setTimeout(() => { console.error('e2e: timed out after 240 s'); cleanup(1); }, 240_000);

let server;
let browser;
let idp;
let dns;
let downstream;
let samlIdp;
let ldapDir;
let hookReceiver;
const dbUrl = `sqlite://${join(work, 'e2e.db')}?mode=rwc`;
function cleanup(code) {
  clearTimeout(deadline);
  if (dns) dns.stop();
  if (downstream && downstream.exitCode === null) downstream.kill('SIGTERM');
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (idp && idp.exitCode === null) idp.kill('SIGTERM');
  if (samlIdp && samlIdp.exitCode === null) samlIdp.kill('SIGTERM');
  if (ldapDir && ldapDir.exitCode === null) ldapDir.kill('SIGTERM');
  if (hookReceiver && hookReceiver.exitCode === null) hookReceiver.kill('SIGTERM');
  const done = () => { rmSync(work, { recursive: true, force: true }); process.exit(code); };
  (browser ? browser.close().catch(() => {}) : Promise.resolve()).then(done);
}

function startServer(dnsAddr) {
  return new Promise((resolvePromise, reject) => {
    server = spawn(bin, [
      '--dns-server', dnsAddr,
      '--domain-check-unit-ms', '300',
      '--bind', '127.0.0.1:0',
      '--database-url', dbUrl,
      '--key-file', join(work, 'latchkey.key'),
      '--site-root', siteRoot,
      '--allow-private-idp',
      '--allow-private-webhooks',
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' } });
    let log = '';
    const onData = (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolvePromise(m[1]);
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code) => reject(new Error(`server exited (${code}):\n${log}`)));
    setTimeout(() => reject(new Error(`server did not start in 30 s:\n${log}`)), 30_000);
  });
}

function startIdp(callbackUrl) {
  return new Promise((resolvePromise, reject) => {
    const clients = JSON.stringify([{ client_id: 'latchkey-e2e', client_secret: 'e2e-secret', redirect_uris: [callbackUrl] }]);
    idp = spawn(process.execPath, [join(import.meta.dirname, 'peers/oidc-idp.mjs')],
      { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, OIDC_CLIENTS: clients } });
    let out = '';
    idp.stdout.on('data', (c) => { out += c.toString(); const m = out.match(/READY (\S+)/); if (m) resolvePromise(m[1]); });
    idp.on('exit', (code) => reject(new Error(`oidc-provider exited (${code})`)));
    setTimeout(() => reject(new Error('oidc-provider did not start in 20 s')), 20_000);
  });
}

// The pysaml2 IdP (peers/saml-idp.py); stops when its stdin closes.
function startSamlIdp() {
  return new Promise((resolvePromise, reject) => {
    samlIdp = spawn('python3', [join(import.meta.dirname, 'peers/saml-idp.py')], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, PORT: '0' } });
    let out = '';
    samlIdp.stdout.on('data', (c) => { out += c.toString(); const m = out.match(/READY (\S+)/); if (m) resolvePromise(m[1]); });
    samlIdp.on('exit', (code) => reject(new Error(`saml-idp.py exited (${code})`)));
    setTimeout(() => reject(new Error('saml-idp.py did not start in 20 s')), 20_000);
  });
}

// A private OpenLDAP directory (peers/ldap-directory.py) whose people have addresses at `mailDomain`.
function startLdapDir(mailDomain) {
  return new Promise((resolvePromise, reject) => {
    ldapDir = spawn('python3', [join(import.meta.dirname, 'peers/ldap-directory.py')], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, MAIL_DOMAIN: mailDomain } });
    let out = '';
    ldapDir.stdout.on('data', (c) => { out += c.toString(); const m = out.match(/READY (\S+)/); if (m) resolvePromise(m[1]); });
    ldapDir.on('exit', (code) => reject(new Error(`ldap-directory.py exited (${code})`)));
    setTimeout(() => reject(new Error('ldap-directory.py did not start in 20 s')), 20_000);
  });
}

// A webhook endpoint that verifies messages with PyPI's standardwebhooks (peers/webhook-receiver.py).
function startHookReceiver() {
  return new Promise((resolvePromise, reject) => {
    hookReceiver = spawn('python3', [join(import.meta.dirname, 'peers/webhook-receiver.py')], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    hookReceiver.stdout.on('data', (c) => { out += c.toString(); const m = out.match(/READY (\S+)/); if (m) resolvePromise(m[1]); });
    hookReceiver.on('exit', (code) => reject(new Error(`webhook-receiver.py exited (${code})`)));
    setTimeout(() => reject(new Error('webhook-receiver.py did not start in 20 s')), 20_000);
  });
}

function freePort() {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolvePromise(port)); });
    s.on('error', reject);
  });
}

function startDownstream(env) {
  return new Promise((resolvePromise, reject) => {
    downstream = spawn(process.execPath, [join(import.meta.dirname, 'peers/downstream-app.mjs')],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    downstream.stdout.on('data', (c) => { out += c.toString(); const m = out.match(/READY (\S+)/); if (m) resolvePromise(m[1]); });
    downstream.on('exit', (code) => reject(new Error(`downstream app exited (${code})`)));
    setTimeout(() => reject(new Error('downstream app did not start in 20 s')), 20_000);
  });
}

async function step(name, fn) {
  const t = Date.now();
  await fn();
  console.log(`  ok  ${name} (${Date.now() - t} ms)`);
}

async function main() {
  dns = await startBind();
  const base = await startServer(dns.addr);
  console.log(`e2e: server at ${base}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  const stamp = Date.now().toString(36);
  const email = `owner-${stamp}@example.com`;
  const orgName = `E2E Org ${stamp}`;
  const hydrated = () => page.waitForSelector('body[data-hydrated="true"]');

  await step('sign up in the console', async () => {
    await page.goto(`${base}/signup`);
    await hydrated();
    await page.getByLabel('Your name').fill('E2E Owner');
    await page.getByLabel('Work email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill('correct horse battery staple');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(`${base}/orgs`);
    await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
  });

  let orgId;
  await step('create an organization', async () => {
    await page.getByLabel('Name', { exact: true }).fill(orgName);
    await page.getByLabel('Slug (used in the SSO login URL)').fill(`e2e-${stamp}`);
    await page.getByRole('button', { name: 'Create organization' }).click();
    await page.waitForURL(/\/orgs\/[0-9A-Z]{26}$/);
    orgId = page.url().split('/').pop();
    await page.getByRole('heading', { name: orgName }).waitFor();
    await page.getByText(`/api/auth/sso/e2e-${stamp}/login`).waitFor();
  });

  await step('members page lists the owner', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    await page.waitForURL(`${base}/orgs/${orgId}/members`);
    const row = page.getByRole('row', { name: new RegExp(email) });
    await row.waitFor();
    assert.match(await row.innerText(), /owner/);
  });

  let key;
  await step('create an API key; Copy works once hydrated', async () => {
    await page.goto(`${base}/account`);
    await hydrated();
    await page.getByLabel('Name', { exact: true }).fill('e2e key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const panel = page.locator('#new-key');
    await panel.waitFor();
    key = (await panel.locator('code.value').innerText()).trim();
    assert.match(key, /^lk_[A-Za-z0-9_-]{40,}$/);
    await panel.getByRole('button', { name: 'Copy new API key' }).click();
    await panel.getByRole('button', { name: 'Copy new API key' }).filter({ hasText: 'Copied' }).waitFor();
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(clip, key, 'the clipboard holds the key');
    await page.getByRole('row', { name: /e2e key/ }).waitFor();
  });

  await step('without JavaScript: a wrong password is explained, then sign-in works and a new key is shown once', async () => {
    const ctx = await browser.newContext({ javaScriptEnabled: false });
    const p = await ctx.newPage();
    p.setDefaultTimeout(20_000);
    await p.goto(`${base}/signin`);
    await p.getByLabel('Work email').fill(email);
    await p.getByRole('button', { name: 'Continue' }).click();
    await p.getByLabel('Password', { exact: true }).fill('not the password 123');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('alert').filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
    await p.getByLabel('Password', { exact: true }).fill('correct horse battery staple');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(`${base}/orgs`);
    await p.goto(`${base}/account`);
    await p.getByLabel('Name', { exact: true }).fill('no-js key');
    await p.getByRole('button', { name: 'Create key' }).click();
    const panel = p.locator('#new-key');
    await panel.waitFor();
    assert.match((await panel.locator('code.value').innerText()).trim(), /^lk_[A-Za-z0-9_-]{40,}$/);
    await p.getByRole('row', { name: /no-js key/ }).waitFor();
    await p.reload();
    await p.getByRole('row', { name: /no-js key/ }).waitFor();
    assert.equal(await p.locator('#new-key').count(), 0, 'the key is shown only once');
    await ctx.close();
  });

  await step('the key calls the REST API and finds the org', async () => {
    const res = await fetch(`${base}/api/user/organizations`, { headers: { 'X-Api-Key': key } });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.success, true);
    const org = body.data.find((o) => o.id === orgId);
    assert.ok(org, `org ${orgId} in ${JSON.stringify(body.data)}`);
    assert.equal(org.name, orgName);
    assert.equal(org.role, 'owner');
  });

  let loginUrl;
  let issuer;
  await step('connect the real OpenID Provider on the Identity provider page and test it', async () => {
    issuer = await startIdp(`${base}/api/auth/sso/callback`);
    await page.goto(`${base}/orgs/${orgId}/sso`);
    await hydrated();
    const callback = (await page.locator('code.value[aria-label="callback URL"]').innerText()).trim();
    assert.equal(callback, `${base}/api/auth/sso/callback`);
    await page.getByLabel('Identity provider', { exact: true }).selectOption('oidc');
    await page.getByText('Any OpenID Connect provider').waitFor();
    await page.getByLabel('Issuer URL').fill(issuer);
    await page.getByLabel('Client ID').fill('latchkey-e2e');
    await page.getByLabel('Client secret').fill('e2e-secret');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved, not tested yet').waitFor();
    assert.equal(await page.getByLabel('Client secret').inputValue(), '', 'the secret is never sent back to the page');
    await page.getByRole('button', { name: 'Test connection' }).click();
    const result = page.locator('#test-result');
    await result.waitFor();
    assert.match(await result.innerText(), /Test passed\. SSO configuration is valid.*\(\d+ ms\)/s);
    loginUrl = (await page.locator('code.value[aria-label="SSO login URL"]').innerText()).trim();
    assert.equal(loginUrl, `${base}/api/auth/sso/e2e-${stamp}/login`);
  });

  const domain = `e2e-${stamp}.test`;
  await step('before the domain is proven, someone makes a password account at it', async () => {
    const r = await fetch(`${base}/api/auth/signup`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `early@${domain}`, password: 'typed by anyone 123', name: 'Early' }),
    });
    assert.equal(r.status, 201);
  });

  await step('add a domain; the page turns it verified by itself once the TXT record is published', async () => {
    await page.goto(`${base}/orgs/${orgId}/domains`);
    await hydrated();
    await page.getByLabel('Domain', { exact: true }).fill(domain.toUpperCase());
    await page.getByRole('button', { name: 'Add domain' }).click();
    const card = page.locator(`li[data-domain="${domain}"]`);
    await card.waitFor();
    assert.equal(await card.getAttribute('data-status'), 'pending');
    await card.getByText('Waiting for the TXT record').waitFor();
    const name = (await card.locator(`code.value[aria-label="TXT record name for ${domain}"]`).innerText()).trim();
    const value = (await card.locator(`code.value[aria-label="TXT record value for ${domain}"]`).innerText()).trim();
    assert.equal(name, `_latchkey-challenge.${domain}`);
    assert.match(value, /^latchkey-verification=[A-Za-z0-9_-]{20,}$/);
    await card.locator('.last-result').filter({ hasText: 'NXDOMAIN' }).waitFor();
    await page.evaluate(() => { window.__notReloaded = true; });
    dns.setTxt(name, [value]);
    await page.locator(`li[data-domain="${domain}"][data-status="verified"]`).waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__notReloaded), true, 'verified without a reload');
    await page.locator(`li[data-domain="${domain}"]`).getByText('routes to SSO').waitFor();
  });

  await step('an email at the verified domain goes from the sign-in page to the IdP and back', async () => {
    const ctx = await browser.newContext();
    const person = await ctx.newPage();
    person.setDefaultTimeout(20_000);
    await person.goto(`${base}/signin`);
    await person.getByLabel('Work email').fill(`new.person@${domain}`);
    await person.getByRole('button', { name: 'Continue' }).click();
    await person.waitForURL((u) => !u.href.startsWith(base));
    await person.locator('input[name="login"]').fill(`new.person@${domain}`);
    await person.locator('input[name="password"]').fill('anything');
    await person.getByRole('button', { name: 'Sign-in' }).click();
    await person.getByRole('button', { name: 'Continue' }).click();
    await person.waitForURL(`${base}/orgs/${orgId}`);
    await person.getByRole('heading', { name: orgName }).waitFor();
    await ctx.close();
  });

  await step('a new member signs in through the IdP login form and lands in the console', async () => {
    const memberContext = await browser.newContext();
    const member = await memberContext.newPage();
    member.setDefaultTimeout(20_000);
    await member.goto(loginUrl);
    await member.locator('input[name="login"]').fill(`jit.member@${domain}`);
    await member.locator('input[name="password"]').fill('anything');
    await member.getByRole('button', { name: 'Sign-in' }).click();
    await member.getByRole('button', { name: 'Continue' }).click();
    await member.waitForURL(`${base}/orgs/${orgId}`);
    await member.getByRole('heading', { name: orgName }).waitFor();
    await member.getByRole('link', { name: `jit.member@${domain}` }).waitFor();
    await memberContext.close();
  });

  await step('the owner sees the JIT member in Members', async () => {
    await page.goto(`${base}/orgs/${orgId}/members`);
    const row = page.getByRole('row', { name: new RegExp(`jit\\.member@${domain}`) });
    await row.waitFor();
    assert.match(await row.innerText(), /member/);
  });

  await step('the owner adds a SAML connection from the pysaml2 metadata, a test sign-in activates it, a member is in', async () => {
    const samlUrl = await startSamlIdp();
    await page.goto(`${base}/orgs/${orgId}/sso`);
    await hydrated();
    await page.locator('#saml-name').fill('pysaml2');
    await page.getByLabel('IdP metadata URL').fill(`${samlUrl}/metadata`);
    await page.getByRole('button', { name: 'Add SAML connection' }).click();
    const card = page.getByRole('article', { name: 'SAML connection pysaml2' });
    await card.waitFor();
    await card.getByText('Not active yet').waitFor();
    const acs = (await card.locator('code.value[aria-label="ACS URL"]').innerText()).trim();
    assert.equal(acs, `${base}/api/auth/sso/saml/acs`);
    const entityId = (await card.locator('code.value[aria-label="SP entity ID"]').innerText()).trim();
    const metadataHref = await card.getByRole('link', { name: 'Download SP metadata' }).getAttribute('href');
    assert.equal(metadataHref, entityId);
    // What the IdP admin does with the downloaded metadata: register Latchkey as a service provider.
    const metadata = await (await fetch(metadataHref)).text();
    const registered = await fetch(`${samlUrl}/sp`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: metadata });
    assert.equal(registered.status, 200, await registered.text());
    await fetch(`${samlUrl}/user`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name_id: 'saml-0001', name_id_format: 'persistent', email: `saml.member@${domain}`, given_name: 'Sam', family_name: 'Member', groups: [] }) });
    const testUrl = await card.getByRole('link', { name: 'Test sign-in' }).getAttribute('href');
    // The test sign-in runs in its own browser: the IdP signs in its user, who lands in the console.
    const ctx = await browser.newContext();
    const member = await ctx.newPage();
    member.setDefaultTimeout(20_000);
    await member.goto(testUrl);
    await member.waitForURL(`${base}/orgs/${orgId}`);
    await member.getByRole('link', { name: `saml.member@${domain}` }).waitFor();
    await ctx.close();
    await page.reload();
    await page.getByRole('article', { name: 'SAML connection pysaml2' }).getByText('Active: takes sign-ins.').waitFor();
  });

  await step('the owner adds an LDAP connection and tests it step by step; an email at the domain goes to the LDAP form and into the console', async () => {
    const info = await (await fetch(`${await startLdapDir(domain)}/info`)).json();
    await page.goto(`${base}/orgs/${orgId}/sso`);
    await hydrated();
    await page.locator('#ldap-name').fill('Company directory');
    await page.getByLabel('Server URL').fill(info.ldap_url);
    await page.locator('#ldap-ca').fill(info.ca_pem);
    await page.getByLabel('Service account bind DN').fill(info.bind_dn);
    await page.getByLabel('Service account password').fill(info.bind_password);
    await page.getByLabel('Base DN of people').fill(info.people_dn);
    await page.locator('#ldap-domains').fill(domain);
    await page.getByRole('button', { name: 'Add LDAP connection' }).click();
    const card = page.getByRole('article', { name: 'LDAP connection Company directory' });
    await card.waitFor();
    await card.getByText('Not active yet').waitFor();
    await card.getByLabel('Sample name to search for').fill('alice');
    await card.getByRole('button', { name: 'Test connection' }).click();
    const tested = page.getByRole('article', { name: 'LDAP connection Company directory' });
    await tested.getByText('Test passed').waitFor();
    for (const s of ['dns', 'connect', 'starttls', 'bind', 'search']) {
      await tested.getByRole('cell', { name: s, exact: true }).waitFor();
    }
    await tested.getByText('Active: takes sign-ins.').waitFor();

    const ctx = await browser.newContext();
    const member = await ctx.newPage();
    member.setDefaultTimeout(20_000);
    await member.goto(`${base}/signin`);
    await member.getByLabel('Work email').fill(`carol@${domain}`);
    await member.getByRole('button', { name: 'Continue' }).click();
    await member.waitForURL(/\/signin\/ldap\?/);
    assert.equal(await member.getByLabel('Username or work email').inputValue(), `carol@${domain}`);
    await member.getByLabel('Password').fill('not-her-password');
    await member.getByRole('button', { name: 'Sign in' }).click();
    await member.getByRole('alert').getByText('The name or password is not right').waitFor();
    assert.ok(!member.url().includes('not-her-password'), 'no password in the URL');
    await member.getByLabel('Password').fill('carol-pw');
    await member.getByRole('button', { name: 'Sign in' }).click();
    await member.waitForURL(`${base}/orgs/${orgId}`);
    await ctx.close();

    // The owner removes it again (with confirmation), so the domain routes to the OpenID Provider as before.
    page.once('dialog', (d) => d.accept());
    await tested.getByRole('button', { name: 'Delete connection' }).click();
    await page.getByRole('article', { name: 'LDAP connection Company directory' }).waitFor({ state: 'detached' });
  });

  await step('the owner reads the audit log: the wrong LDAP password is there with its code and fix, and exports as CSV', async () => {
    await page.goto(`${base}/orgs/${orgId}/audit`);
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/outcome=failure/);
    const row = page.getByRole('row').filter({ hasText: 'ldap_invalid_credentials' });
    await row.first().waitFor();
    await row.first().getByText('directory did not accept', { exact: false }).waitFor();
    const href = await page.getByRole('link', { name: 'CSV' }).getAttribute('href');
    assert.ok(href.includes('outcome=failure'), href);
    const csv = await page.evaluate(async (u) => (await fetch(u)).text(), href);
    assert.ok(csv.startsWith('createdAt,action,outcome') && csv.includes('ldap_invalid_credentials'), csv.slice(0, 300));
  });

  await step('the owner adds a webhook endpoint, copies the secret shown once, and a test message reaches a verifying receiver', async () => {
    const receiver = await startHookReceiver();
    await page.goto(`${base}/orgs/${orgId}/webhooks`);
    await page.getByLabel('Endpoint URL').fill(`${receiver}/hook`);
    await page.getByLabel('Description (optional)').fill('e2e receiver');
    await page.getByLabel(/signin\.failed/).check();
    await page.getByLabel(/member\.role_changed/).check();
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = (await page.locator('#webhook-secret code.value').innerText()).trim();
    assert.match(secret, /^whsec_/);
    const config = await fetch(`${receiver}/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret }) });
    assert.equal(config.status, 200);
    const card = page.getByRole('region', { name: `Webhook ${receiver}/hook` });
    await card.getByRole('button', { name: 'Send test message' }).click();
    // The delivery log refreshes itself until the message is delivered.
    await page.locator('tr[data-status="delivered"]').filter({ hasText: 'webhook.test' }).first().waitFor({ timeout: 20_000 });
    await page.getByRole('cell', { name: 'HTTP 204' }).first().waitFor();
    const got = await (await fetch(`${receiver}/received`)).json();
    assert.equal(got.messages.length, 1, JSON.stringify(got));
    assert.equal(got.messages[0].verified, true, JSON.stringify(got.messages[0]));
    assert.equal(got.messages[0].payload.type, 'webhook.test');
    // Reloading never shows the secret again.
    await page.reload();
    assert.equal(await page.locator('#webhook-secret').count(), 0);
    assert.ok(!(await page.content()).includes(secret.slice(6)), 'the secret is not on the page any more');
  });

  await step('the proven owner of that address takes the account over, and the account page says why', async () => {
    const ctx = await browser.newContext();
    const early = await ctx.newPage();
    early.setDefaultTimeout(20_000);
    await early.goto(loginUrl);
    await early.locator('input[name="login"]').fill(`early@${domain}`);
    await early.locator('input[name="password"]').fill('anything');
    await early.getByRole('button', { name: 'Sign-in' }).click();
    await early.getByRole('button', { name: 'Continue' }).click();
    await early.waitForURL(`${base}/account?notice=account_secured`);
    await early.getByText("Your account is now secured by your organization's sign-in.").waitFor();
    const old = await fetch(`${base}/api/auth/signin`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `early@${domain}`, password: 'typed by anyone 123' }),
    });
    assert.equal(old.status, 401, 'the password someone typed no longer works');
    await ctx.close();
  });

  await step('a password sign-up at the SSO domain is refused and points to SSO', async () => {
    const ctx = await browser.newContext();
    const pat = await ctx.newPage();
    pat.setDefaultTimeout(20_000);
    await pat.goto(`${base}/signup`);
    await pat.waitForSelector('body[data-hydrated="true"]');
    await pat.getByLabel('Your name').fill('Pat Password');
    await pat.getByLabel('Work email').fill(`pat@${domain}`);
    await pat.getByLabel('Password', { exact: true }).fill('correct horse battery staple');
    await pat.getByRole('button', { name: 'Create account' }).click();
    await pat.getByText(`Addresses at ${domain} sign in with their organization's single sign-on`).waitFor();
    assert.match(pat.url(), /\/signup/);
    await ctx.close();
  });

  await step('auto-join needs approval: an IdP sign-in files a request the owner approves on Members', async () => {
    await page.goto(`${base}/orgs/${orgId}/domains`);
    await hydrated();
    // Choosing submits the form (a plain post; the page comes back with the saved choice).
    await Promise.all([page.waitForNavigation(), page.getByLabel('Auto-join', { exact: true }).selectOption('approval')]);
    await page.locator(`li[data-domain="${domain}"] select`).evaluate((el) => el.value).then((v) => assert.equal(v, 'approval'));
    await page.waitForFunction(async (id) => {
      const r = await fetch(`/api/user/organizations/${id}/domains`);
      return (await r.json()).data[0].autoJoin === 'approval';
    }, orgId);
    const ctx = await browser.newContext();
    const pat = await ctx.newPage();
    pat.setDefaultTimeout(20_000);
    // The IdP remembers pat's session and consent after the first pass: each form is filled only if shown.
    const viaIdp = async () => {
      await pat.goto(loginUrl);
      if (pat.url().startsWith(base)) return;
      const login = pat.locator('input[name="login"]');
      const consent = pat.getByRole('button', { name: 'Continue' });
      await Promise.race([login.waitFor(), consent.waitFor(), pat.waitForURL((u) => u.href.startsWith(base))]);
      if (await login.count()) {
        await login.fill(`pat@${domain}`);
        await pat.locator('input[name="password"]').fill('anything');
        await pat.getByRole('button', { name: 'Sign-in' }).click();
      }
      await Promise.race([consent.waitFor().then(() => consent.click()), pat.waitForURL((u) => u.href.startsWith(base))]);
    };
    await viaIdp();
    await pat.waitForURL(`${base}/auth/error?code=join_request_pending`);
    await pat.getByText('Your request to join is waiting for approval').waitFor();
    await page.goto(`${base}/orgs/${orgId}/members`);
    await hydrated();
    const req = page.locator(`tr[data-email="pat@${domain}"]`);
    await req.waitFor();
    assert.match(await req.innerText(), /Identity provider/);
    await req.getByRole('button', { name: 'Approve' }).click();
    await req.waitFor({ state: 'detached' });
    await page.getByRole('row', { name: new RegExp(`pat@${domain}.*member`) }).waitFor();
    await viaIdp();
    await pat.waitForURL(`${base}/orgs/${orgId}`);
    await pat.getByRole('heading', { name: orgName }).waitFor();
    await ctx.close();
    // Back to auto-join for the next members.
    await page.goto(`${base}/orgs/${orgId}/domains`);
    await hydrated();
    // Choosing submits the form (a plain post; the page comes back with the saved choice).
    await Promise.all([page.waitForNavigation(), page.getByLabel('Auto-join', { exact: true }).selectOption('auto')]);
    await page.waitForFunction(async (id) => {
      const r = await fetch(`/api/user/organizations/${id}/domains`);
      return (await r.json()).data[0].autoJoin === 'auto';
    }, orgId);
  });

  await step('an operator registers an application on /admin; a member signs in to it through Latchkey and the IdP', async () => {
    const cli = spawnSync(bin, ['--database-url', dbUrl, 'operators', 'add', email], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'error' } });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /is now an operator/);
    const port = await freePort();
    const redirect = `http://127.0.0.1:${port}/callback`;
    await page.goto(`${base}/admin`);
    await hydrated();
    await page.getByLabel('Name', { exact: true }).fill('Downstream CRM');
    await page.getByLabel('Redirect URIs (one per line, exact match)').fill(redirect);
    await page.getByRole('button', { name: 'Register application' }).click();
    const panel = page.locator('#new-secret');
    await panel.waitFor();
    const clientId = (await panel.locator('code.value[aria-label="client id"]').innerText()).trim();
    const secret = (await panel.locator('code.value[aria-label="client secret"]').innerText()).trim();
    assert.match(clientId, /^app_/);
    assert.match(secret, /^lks_/);
    await page.locator(`section[data-client-id="${clientId}"]`).waitFor();
    const appUrl = await startDownstream({ PORT: String(port), LATCHKEY_URL: base, CLIENT_ID: clientId, CLIENT_SECRET: secret, ORG_SLUG: `e2e-${stamp}` });
    const ctx = await browser.newContext();
    const user = await ctx.newPage();
    user.setDefaultTimeout(20_000);
    await user.goto(appUrl);
    await user.getByRole('link', { name: 'Sign in with SSO' }).click();
    await user.locator('input[name="login"]').fill(`dana@${domain}`);
    await user.locator('input[name="password"]').fill('anything');
    await user.getByRole('button', { name: 'Sign-in' }).click();
    await user.getByRole('button', { name: 'Continue' }).click();
    await user.locator('#who').filter({ hasText: `Signed in as dana@${domain}` }).waitFor();
    assert.ok(user.url().startsWith(appUrl), `back at the application: ${user.url()}`);
    const me = await user.evaluate(async () => (await fetch('/me.json')).json());
    assert.equal(me.claims.org_slug, `e2e-${stamp}`, JSON.stringify(me));
    assert.deepEqual(me.claims.amr, ['sso']);
    await ctx.close();
  });

  await step('the operator adds the company OP on /admin/providers and tests it; a new person continues with it from the sign-in page', async () => {
    await page.goto(`${base}/admin/providers`);
    await hydrated();
    await page.getByLabel('Type', { exact: true }).selectOption('oidc');
    await page.getByLabel('Display name', { exact: true }).fill('Company OP');
    await page.getByLabel('Slug (a-z, 0-9 and -; unique)').fill('company-op');
    await page.getByLabel('Client id', { exact: true }).fill('latchkey-e2e');
    await page.getByLabel('Client secret (stored encrypted, never shown again)').fill('e2e-secret');
    await page.getByLabel('Issuer URL').fill(issuer);
    await page.getByRole('button', { name: 'Add provider' }).click();
    const card = page.locator('section[data-provider="company-op"]');
    await card.waitFor();
    await hydrated();
    await card.getByRole('button', { name: 'Test', exact: true }).click();
    await card.getByText(/The provider is reachable.*\(\d+ ms\)/).waitFor();
    const ctx = await browser.newContext();
    const person = await ctx.newPage();
    person.setDefaultTimeout(20_000);
    await person.goto(`${base}/signin`);
    await person.getByRole('link', { name: 'Continue with Company OP' }).click();
    await person.locator('input[name="login"]').fill(`casey@personal-${stamp}.test`);
    await person.locator('input[name="password"]').fill('anything');
    await person.getByRole('button', { name: 'Sign-in' }).click();
    await person.getByRole('button', { name: 'Continue' }).click();
    await person.waitForURL(`${base}/orgs`);
    const me = await person.evaluate(async () => (await fetch('/api/user/me')).json());
    assert.equal(me.data.email, `casey@personal-${stamp}.test`, JSON.stringify(me));
    await ctx.close();
  });

  await step('the owner enrols TOTP and requires a second factor on the Security page', async () => {
    await page.goto(`${base}/mfa?next=/orgs/${orgId}/security`);
    await hydrated();
    const key = (await page.locator('code.value[aria-label="authenticator key"]').innerText()).trim();
    assert.match(key, /^[A-Z2-7]{32}$/);
    await page.locator('.qr svg').waitFor();
    await page.getByLabel('Code from the app').fill(totp(key));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.locator('#recovery-codes li').first().waitFor();
    assert.equal(await page.locator('#recovery-codes li').count(), 10);
    await page.getByRole('link', { name: 'Continue' }).click();
    await page.waitForURL(`${base}/orgs/${orgId}/security`);
    await hydrated();
    await page.getByLabel('Also require a second factor').check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByText('Saved.').waitFor();
  });

  let memberCtx;
  let memberPage;
  await step('a member signing in through the IdP is held for TOTP, enrols, and reaches the console', async () => {
    memberCtx = await browser.newContext();
    memberPage = await memberCtx.newPage();
    memberPage.setDefaultTimeout(20_000);
    await memberPage.goto(loginUrl);
    await memberPage.locator('input[name="login"]').fill(`mfa.member@${domain}`);
    await memberPage.locator('input[name="password"]').fill('anything');
    await memberPage.getByRole('button', { name: 'Sign-in' }).click();
    await memberPage.getByRole('button', { name: 'Continue' }).click();
    await memberPage.waitForURL(/\/mfa\?next=/);
    await memberPage.waitForSelector('body[data-hydrated="true"]');
    // Held: the org is out of reach until the second factor is set up.
    const held = await memberPage.evaluate(async (id) => (await fetch(`/api/user/organizations/${id}`)).json(), orgId);
    assert.equal(held.code, 'MFA_REQUIRED');
    const key = (await memberPage.locator('code.value[aria-label="authenticator key"]').innerText()).trim();
    await memberPage.getByLabel('Code from the app').fill(totp(key));
    await memberPage.getByRole('button', { name: 'Turn on' }).click();
    await memberPage.locator('#recovery-codes li').first().waitFor();
    await memberPage.getByRole('link', { name: 'Continue' }).click();
    await memberPage.waitForURL(`${base}/orgs/${orgId}`);
    await memberPage.getByRole('heading', { name: orgName }).waitFor();
  });

  await step('the owner revokes the member\'s session and the member is signed out', async () => {
    await page.goto(`${base}/orgs/${orgId}/sessions`);
    await hydrated();
    const row = page.locator(`tr[data-email="mfa.member@${domain}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /SSO/);
    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: /Revoke/ }).click();
    await row.waitFor({ state: 'detached' });
    await memberPage.goto(`${base}/orgs/${orgId}`);
    await memberPage.waitForURL(`${base}/signin`);
    await memberCtx.close();
  });

  await step('sign out returns to sign-in and the console is closed', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${base}/signin`);
    await page.goto(`${base}/orgs`);
    await page.waitForURL(`${base}/signin`);
  });

  assert.deepEqual(errors, [], 'no uncaught errors in the page');
  console.log('e2e: all passed');
}

main().then(() => cleanup(0), (e) => { console.error('e2e FAILED:', e); cleanup(1); });
