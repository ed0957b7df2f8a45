// The official MCP client over Streamable HTTP with TLS: a self-signed certificate made by the
// openssl CLI, trusted by the client through NODE_EXTRA_CA_CERTS.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn as spawnChild } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';

import { SERVER, prepareConfig, until } from './lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientProgram = path.join(here, 'lib', 'https-client.mjs');

let certDir;
let dir;
let server;
let serverLog = '';
let port;
let cert;

before(async () => {
  certDir = await mkdtemp(path.join(os.tmpdir(), 'pmcp-e2e-tls-'));
  cert = path.join(certDir, 'cert.pem');
  const key = path.join(certDir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
  { stdio: 'ignore' });
  const portFile = path.join(certDir, 'port');
  const prepared = await prepareConfig({
    config: {
      transports: ['http'],
      http: { listen: '127.0.0.1:0', tls_cert: cert, tls_key: key, port_file: portFile },
    },
  });
  dir = prepared.dir;
  server = spawnChild(SERVER, ['--config', prepared.configPath],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (chunk) => { serverLog += chunk.toString(); });
  const text = await until(() => existsSync(portFile) && readFileSync(portFile, 'utf8'),
    10000, 'the port file');
  port = Number(text.trim());
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  for (const d of [dir, certDir]) if (d) await rm(d, { recursive: true, force: true });
});

// Runs the client program against url; returns its JSON line.
async function runClient(url, env) {
  const { stdout } = await promisify(execFile)(process.execPath, [clientProgram, url],
    { cwd: here, env: { PATH: process.env.PATH, ...env }, timeout: 60000 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

test('the official client initializes, lists tools and spawns over https', async () => {
  for (const host of ['localhost', '127.0.0.1']) {
    const result = await runClient(`https://${host}:${port}/mcp`, { NODE_EXTRA_CA_CERTS: cert });
    assert.equal(result.error, undefined, `${host}: ${result.error}\n${serverLog}`);
    assert.ok(result.tools.includes('spawn'), JSON.stringify(result.tools));
    assert.notEqual(result.spawn.isError, true, JSON.stringify(result.spawn));
    assert.equal(result.spawn.structuredContent.stdout, 'hi\n');
    assert.equal(result.spawn.structuredContent.exitCode, 0);
  }
});

test('a client that does not trust the certificate cannot connect', async () => {
  const result = await runClient(`https://localhost:${port}/mcp`, {});
  assert.match(result.error ?? '', /self[- ]signed|certificate/i, JSON.stringify(result));
});

test('http:// to the https port fails with a clear status', async () => {
  const result = await runClient(`http://127.0.0.1:${port}/mcp`, {});
  assert.match(result.error ?? '', /HTTP 400|HTTPS only/, JSON.stringify(result));
});
