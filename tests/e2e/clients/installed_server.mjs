// Drives a process-mcp installed from our Debian packages, with the official MCP client. Run by
// tests/package/package_test.sh in two ways:
//
//   node installed_server.mjs chroot ROOT
//     the packages installed with dpkg into the clean root ROOT; the server runs as
//     `chroot ROOT ...` and sees only what the packages installed. Over stdio with the default
//     config (host executor in its sandbox, stdio transport), then over Streamable HTTP with the
//     packaged /etc/process-mcp/http.toml.
//   node installed_server.mjs hardened PREFIX WORKDIR
//     the packages unpacked under PREFIX; the server runs as the unit runs it: as an
//     unprivileged user, with no_new_privs and an empty capability bounding set (setpriv), and
//     its sandbox must still work. WORKDIR is the writable working directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [mode, root, workdir] = process.argv.slice(2);
if (!['chroot', 'hardened'].includes(mode) || !root || (mode === 'hardened' && !workdir)) {
  console.error('usage: node installed_server.mjs chroot ROOT | hardened PREFIX WORKDIR');
  process.exit(2);
}
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

function textOf(result) {
  return (result.content || []).map((c) => c.text || '').join('\n');
}

async function spawnTool(client, args) {
  const result = await client.callTool({ name: 'spawn', arguments: args });
  const data = result.structuredContent || {};
  // What the command printed, both streams; the JSON text of the result if there is none.
  const out = `${data.stdout ?? ''}${data.stderr ?? ''}` || textOf(result);
  return { result, text: out, data };
}

// The command line that starts the server in each mode.
function serverCommand() {
  if (mode === 'chroot') {
    // From the user's home, as a client config would start it: `process-mcp` with no options.
    return { command: '/usr/sbin/chroot', args: [root, '/bin/sh', '-c', 'cd /root && exec process-mcp'] };
  }
  const config = path.join(workdir, 'process-mcp.toml');
  writeFileSync(config, [
    'executor = "host"', 'transports = ["stdio"]', '',
    '[defaults]', `workdir = ${JSON.stringify(workdir)}`, '',
    '[environment]', `set = { HOME = ${JSON.stringify(workdir)} }`, ''].join('\n'));
  return {
    command: '/usr/bin/setpriv',
    args: ['--reuid=65534', '--regid=65534', '--clear-groups', '--no-new-privs',
      '--bounding-set=-all', '--inh-caps=-all',
      path.join(root, 'usr', 'bin', 'process-mcp'), '--config', config],
  };
}

async function overStdio() {
  const transport = new StdioClientTransport({ ...serverCommand(), env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => { stderr += d; });
  const client = new Client({ name: 'package-test', version: '1' });
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    for (const name of ['spawn', 'ps', 'stdin', 'stdout', 'kill']) {
      assert.ok(tools.includes(name), `tools/list lacks ${name}: ${tools}`);
    }

    const echo = await spawnTool(client, { command: 'echo hello from the package; cat /etc/debian_version' });
    assert.ok(!echo.result.isError, echo.text);
    assert.match(echo.text, /hello from the package/);
    assert.match(echo.text, /^12\./m);
    assert.equal(echo.data.exitCode, 0, JSON.stringify(echo.data));
    console.log(`${mode}: echo through the installed host executor: ok`);

    // The sandbox is on by default and works from the installed layout (bwrap from its
    // package, pmcp-host-supervisor and pmcp-net-bridge from the plugin directory).
    const write = await spawnTool(client, { command: 'touch /usr/should-not-exist; echo rc=$?' });
    assert.match(write.text, /Read-only file system/, write.text);
    assert.match(write.text, /rc=1/, write.text);
    const pids = await spawnTool(client, { command: 'ls /proc | grep -c "^[0-9]"' });
    assert.ok(Number.parseInt(pids.text.match(/^(\d+)$/m)?.[1] ?? '999', 10) < 10,
      `the sandbox sees host processes: ${pids.text}`);
    console.log(`${mode}: the sandbox is on (read-only /usr, own PID namespace): ok`);

    const tty = await spawnTool(client, { command: 'test -t 0 && stty size', tty: true });
    assert.match(tty.text, /30 120/, tty.text);
    console.log(`${mode}: a TTY command gets a real terminal: ok`);
  } catch (e) {
    console.error(`--- server stderr ---\n${stderr}`);
    throw e;
  } finally {
    await client.close();
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function overHttp() {
  const port = await freePort();
  const server = spawn('/usr/sbin/chroot', [root, '/bin/sh', '-c',
    `cd /var/lib && exec process-mcp --config /etc/process-mcp/http.toml --listen 127.0.0.1:${port}`],
  { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const deadline = Date.now() + 20000;
    for (;;) {
      const up = await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the HTTP server did not listen on ${port}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const client = new Client({ name: 'package-test-http', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    const echo = await spawnTool(client, { command: 'echo hello over http; pwd' });
    assert.match(echo.text, /hello over http/);
    assert.match(echo.text, /\/var\/lib\/process-mcp/, 'the packaged http.toml sets the workdir');
    await client.close();
    console.log('http: the packaged http.toml with the installed http transport: ok');
  } catch (e) {
    console.error(`--- server stderr ---\n${stderr}`);
    throw e;
  } finally {
    server.kill('SIGTERM');
    const { code, signal } = await exited;
    assert.equal(signal, null, `the HTTP server died of ${signal}`);
    assert.equal(code, 0, `the HTTP server exited with ${code} after SIGTERM:\n${stderr}`);
  }
}

await overStdio();
if (mode === 'chroot') await overHttp();
console.log('installed server: all checks passed');
