// Records real MCP traffic from the official client as seed inputs for the fuzz harnesses
// (tests/fuzz/corpus): the stdio stream a client sends (jsonrpc), and the raw HTTP requests of
// the Streamable HTTP client (http_request), each connection's bytes as one file.
//
//   node record_fuzz_corpus.mjs SERVER OUT_DIR
//
// SERVER is a built process-mcp; the sessions use the host executor with the sandbox off.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [server, outDir] = process.argv.slice(2);
if (!server || !outDir) {
  console.error('usage: node record_fuzz_corpus.mjs SERVER OUT_DIR');
  process.exit(2);
}
const work = mkdtempSync(path.join(os.tmpdir(), 'pmcp-record-'));
const config = path.join(work, 'process-mcp.toml');
writeFileSync(config, 'executor = "host"\ntransports = ["stdio"]\n[host]\nsandbox = { enabled = false }\n');

// One agent's session: the tools as an agent uses them.
async function session(client) {
  await client.listTools();
  await client.callTool({ name: 'spawn', arguments: { command: 'echo hello; echo oops >&2; exit 3' } });
  const bg = await client.callTool({ name: 'spawn', arguments: { command: 'cat', background: true } });
  const id = bg.structuredContent.pid;
  await client.callTool({ name: 'stdin', arguments: { pid: id, input: 'line one\\nline two\\n' } });
  await client.callTool({ name: 'wait', arguments: { id, until: { pattern: '^line two$' }, timeoutMs: 2000 } });
  await client.callTool({ name: 'stdout', arguments: { pid: id, lines: 10 } });
  await client.callTool({ name: 'ps', arguments: {} });
  await client.callTool({ name: 'kill', arguments: { pid: id, signal: 'SIGTERM' } });
  const tty = await client.callTool({ name: 'spawn', arguments: { command: 'sh', tty: true, background: true } });
  const tid = tty.structuredContent.pid;
  await client.callTool({ name: 'stdin', arguments: { pid: tid, keys: ['C-c', 'Up', 'Enter'] } });
  await client.callTool({ name: 'resize', arguments: { id: tid, cols: 100, rows: 40 } });
  await client.callTool({ name: 'kill', arguments: { pid: tid } });
  await client.listResources();
  await client.ping();
  await client.callTool({ name: 'spawn', arguments: { command: 12 } });  // a bad argument
}

async function recordStdio(file) {
  // tee copies what the client writes to the server's stdin.
  const transport = new StdioClientTransport({
    command: '/bin/sh',
    args: ['-c', `tee "${file}" | "${server}" --config "${config}"`],
    stderr: 'ignore',
  });
  const client = new Client({ name: 'corpus-recorder', version: '1' });
  await client.connect(transport);
  await session(client);
  await client.close();
}

async function recordHttp(dir) {
  // A recording relay between the client and the server: each connection's request bytes.
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const srv = spawn(server, ['--config', config, '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' });
  let n = 0;
  const relay = net.createServer((client) => {
    const chunks = [];
    const upstream = net.connect(port, '127.0.0.1');
    client.on('data', (d) => { chunks.push(d); upstream.write(d); });
    upstream.on('data', (d) => client.write(d));
    const save = () => {
      if (chunks.length) writeFileSync(path.join(dir, `request-${String(++n).padStart(2, '0')}`), Buffer.concat(chunks));
      chunks.length = 0;
    };
    client.on('close', () => { save(); upstream.destroy(); });
    upstream.on('close', () => client.destroy());
  });
  const relayPort = await new Promise((resolve) => relay.listen(0, '127.0.0.1', () => resolve(relay.address().port)));
  for (let i = 0; i < 50; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = new Client({ name: 'corpus-recorder', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${relayPort}/mcp`));
  await client.connect(transport);
  await session(client);
  await transport.terminateSession();
  await client.close();
  await new Promise((r) => setTimeout(r, 300));
  relay.close();
  srv.kill('SIGTERM');
}

mkdirSync(path.join(outDir, 'jsonrpc'), { recursive: true });
mkdirSync(path.join(outDir, 'http_request'), { recursive: true });
await recordStdio(path.join(outDir, 'jsonrpc', 'agent-session'));
await recordHttp(path.join(outDir, 'http_request'));
rmSync(work, { recursive: true, force: true });
console.log(`recorded into ${outDir}`);
