// Helpers for the end-to-end tests: start the built server with a temporary config, talk to it
// with the official MCP client (or with raw JSON lines), and poll for conditions with a deadline.
import assert from 'node:assert/strict';
import { spawn as spawnChild, execFileSync } from 'node:child_process';
import {
  chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync,
} from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

// The newest build tree that holds bin/<name>, for running the tests by hand without ctest.
function findBuilt(name) {
  const buildRoot = path.join(repoRoot, 'build');
  if (!existsSync(buildRoot)) return undefined;
  const candidates = readdirSync(buildRoot)
    .map((dir) => path.join(buildRoot, dir, 'bin', name))
    .filter((file) => existsSync(file))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return candidates[0];
}

export const SERVER = process.env.PMCP_SERVER || findBuilt('process-mcp');
export const CHILD = process.env.PMCP_CHILD || findBuilt('pmcp-test-child');
export const BUILD_DIR =
  process.env.PMCP_BUILD_DIR || (SERVER ? path.resolve(path.dirname(SERVER), '..') : undefined);

if (!SERVER || !existsSync(SERVER)) {
  throw new Error(
    'process-mcp binary not found: build it (cmake --preset debug && cmake --build --preset debug)' +
      ' or set PMCP_SERVER to its path');
}

// The suite runs unchanged against each executor and transport:
//   PMCP_E2E_EXECUTOR=host (default) or docker: docker runs every server's processes in one
//     container made for this test file from the local image PMCP_E2E_IMAGE (default
//     pmcp-test-debian:latest, built by scripts/docker-test-env.sh), which bind-mounts a host
//     folder at the same path, so the tests can read and write the files the processes see.
//   PMCP_E2E_TRANSPORT=stdio (default) or http: http starts the server with the Streamable HTTP
//     transport on 127.0.0.1 (an ephemeral port) and connects the official client's
//     StreamableHTTPClientTransport to it. RawServer always speaks stdio.
export const EXECUTOR = process.env.PMCP_E2E_EXECUTOR || 'host';
export const TRANSPORT = process.env.PMCP_E2E_TRANSPORT || 'stdio';
if (!['host', 'docker'].includes(EXECUTOR)) {
  throw new Error(`PMCP_E2E_EXECUTOR must be host or docker, not '${EXECUTOR}'`);
}
if (!['stdio', 'http'].includes(TRANSPORT)) {
  throw new Error(`PMCP_E2E_TRANSPORT must be stdio or http, not '${TRANSPORT}'`);
}
// PMCP_E2E_SANDBOX=on (default) or off: the host executor's sandbox, which is on by default
// for users too. Sandboxed, HOME is the server's writable working directory (as the README
// recommends; the real one is read-only inside), and each command has its own loopback.
export const SANDBOX = EXECUTOR === 'host' && (process.env.PMCP_E2E_SANDBOX || 'on') !== 'off';
// Process ids look like `${ID_PREFIX}-N`.
export const ID_PREFIX = EXECUTOR;
export const DOCKER = process.env.PMCP_DOCKER_CLI || '/usr/bin/docker';
const IMAGE = process.env.PMCP_E2E_IMAGE || 'pmcp-test-debian:latest';

// Docker mode: one container per test file (a node process), removed when it exits. Its
// processes are visible in the host's process table, so hostProcesses() works as in host mode.
let containerState;
function docker(...args) {
  return execFileSync(DOCKER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}
export function e2eContainer() {
  if (containerState) return containerState;
  const root = mkdtempSync(path.join(os.tmpdir(), 'pmcp-e2e-docker-'));
  const name = `pmcp-e2e-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  try {
    docker('run', '-d', '--name', name, '--network', 'none',
      '-v', `${root}:${root}`, '-w', root, IMAGE, 'sleep', 'infinity');
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`could not start the e2e container from ${IMAGE} ` +
      `(run scripts/docker-test-env.sh to start dockerd and build it): ${error.stderr || error}`);
  }
  containerState = { root, name };
  process.on('exit', () => {
    try { docker('rm', '-f', '-v', name); } catch { /* already gone */ }
    rmSync(root, { recursive: true, force: true });
  });
  return containerState;
}

// Commands run inside the container see only the bind-mounted folder of the host, so the test
// child is copied there once.
let childInContainer;
function dockerChild() {
  if (!childInContainer) {
    const target = e2eContainer();
    childInContainer = path.join(target.root, 'pmcp-test-child');
    copyFileSync(CHILD, childInContainer);
    chmodSync(childInContainer, 0o755);
  }
  return childInContainer;
}

// The host sandbox gives every command a private /tmp, so a build tree under /tmp is out of
// its sight: the test child is then copied once to a scratch folder under /var/tmp.
let childOutsideTmp;
function sandboxChild() {
  const tmp = path.resolve(os.tmpdir());
  if (CHILD !== tmp && !path.resolve(CHILD).startsWith(`${tmp}/`)) return CHILD;
  if (!childOutsideTmp) {
    const dir = mkdtempSync('/var/tmp/pmcp-e2e-child-');
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    childOutsideTmp = path.join(dir, 'pmcp-test-child');
    copyFileSync(CHILD, childOutsideTmp);
    chmodSync(childOutsideTmp, 0o755);
  }
  return childOutsideTmp;
}

export const MAX_TIMEOUT_MS = 60000;
export const OUTPUT_TRUNCATE = 8196;

// Quotes a word for /bin/sh.
export function sh(word) {
  return `'${String(word).replaceAll("'", `'\\''`)}'`;
}

// The test-child helper program as a shell command prefix, e.g. `${child()} sleep 100`.
export function child() {
  assert.ok(CHILD && existsSync(CHILD),
    'pmcp-test-child not found: build the tests or set PMCP_CHILD');
  if (EXECUTOR === 'docker') return sh(dockerChild());
  if (SANDBOX) return sh(sandboxChild());
  return sh(CHILD);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Calls fn until it returns a truthy value (returned) or the deadline passes (throws, saying
// what was awaited and the last value fn saw). fn may return {done, value} via `until.last`.
export async function until(fn, timeoutMs = 10000, what = 'condition', intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const value = await fn((seen) => { last = seen; });
    if (value) return value;
    if (Date.now() >= deadline) {
      const seen = last === undefined ? '' :
        `\nlast seen: ${typeof last === 'string' ? last : JSON.stringify(last, null, 1)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await sleep(intervalMs);
  }
}

// A TOML value (strings, numbers, booleans, arrays of those).
function tomlValue(value) {
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{ ${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)} = ${tomlValue(v)}`)
      .join(', ')} }`;
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`cannot write ${typeof value} as TOML`);
}

// Top-level keys first, then one [table] per nested object (one level, enough for our config).
export function toToml(config) {
  const lines = [];
  const tables = [];
  for (const [key, value] of Object.entries(config)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) tables.push([key, value]);
    else if (value !== undefined) lines.push(`${key} = ${tomlValue(value)}`);
  }
  for (const [name, table] of tables) {
    lines.push('', `[${name}]`);
    for (const [key, value] of Object.entries(table)) {
      if (value !== undefined) lines.push(`${JSON.stringify(key)} = ${tomlValue(value)}`);
    }
  }
  return lines.join('\n') + '\n';
}

function mergeConfig(base, overrides) {
  const out = { ...base };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (value && typeof value === 'object' && !Array.isArray(value) &&
        out[key] && typeof out[key] === 'object' && !Array.isArray(out[key])) {
      out[key] = { ...out[key], ...value };
    } else {
      out[key] = value;
    }
  }
  return out;
}

// A fresh temp dir with config.toml and work/ (the configured workdir unless workdir: false).
export async function prepareConfig({ config, workdir = true, transport = 'stdio' } = {}) {
  const parent = EXECUTOR === 'docker' ? e2eContainer().root : os.tmpdir();
  const dir = await mkdtemp(path.join(parent, 'pmcp-e2e-'));
  const work = path.join(dir, 'work');
  await mkdir(work);
  let base = { executor: EXECUTOR, transports: [transport] };
  if (EXECUTOR === 'docker') {
    base.docker = { container: e2eContainer().name, use_existing: true };
  }
  if (EXECUTOR === 'host' && !SANDBOX) base.host = { sandbox: { enabled: false } };
  if (SANDBOX && workdir) base.environment = { set: { HOME: work } };
  if (transport === 'http') {
    base.http = { listen: '127.0.0.1:0', port_file: path.join(dir, 'port') };
  }
  if (workdir) base.defaults = { workdir: work };
  const merged = mergeConfig(base, config);
  const configPath = path.join(dir, 'config.toml');
  await writeFile(configPath, toToml(merged));
  return { dir, work, configPath, portFile: merged.http?.port_file };
}

// The server's environment: small, but with PATH and HOME so that shells and tools work.
// In a sanitizer build ctest sets the sanitizers' options (reports go to files that
// run-test.cmake checks after the test); the server and what it runs inherit them.
export const SANITIZER_ENV = ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TSAN_OPTIONS'];
// 'asan' or 'tsan' when the server under test is a sanitizer build, else ''. Such a server's
// RSS is mostly the sanitizer's (shadow memory, ASan's quarantine of freed blocks, TSan's
// history), so the tests check memory bounds on the release build only (see memoryBoundsApply).
export const SANITIZER = process.env.PMCP_E2E_SANITIZER ?? '';

// Whether a test's RSS bound means anything for this server. When it does not, the test still
// runs to the end and checks everything else; it says (in a diagnostic) that the bound was not
// checked, and why.
export function memoryBoundsApply(t) {
  if (!SANITIZER) return true;
  t.diagnostic(`RSS bound not checked: a ${SANITIZER} build's RSS is mostly the ` +
    `sanitizer's; the release run checks it`);
  return false;
}

function serverEnv(extra) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  for (const name of SANITIZER_ENV) {
    if (process.env[name]) env[name] = process.env[name];
  }
  return { ...env, ...extra };
}

// A running server with a connected official client. Every tool call checks that the result
// carries structuredContent and a text content with the same JSON.
export class McpServer {
  static async start(options = {}) {
    const transportKind = options.transport ?? TRANSPORT;
    const { dir, work, configPath, portFile } =
      await prepareConfig({ ...options, transport: transportKind });
    let transport;
    let proc;
    let stderrSource;
    // options.maxOpenFiles: the server starts with this soft limit of open files (RLIMIT_NOFILE),
    // through a shell that sets it and then execs the server (same pid).
    let command = SERVER;
    let args = ['--config', configPath];
    if (options.maxOpenFiles !== undefined) {
      args = ['-c', `ulimit -Sn ${Number(options.maxOpenFiles)} && exec "$0" "$@"`, SERVER, ...args];
      command = '/bin/sh';
    }
    if (transportKind === 'http') {
      proc = spawnChild(command, args, {
        env: serverEnv(options.env), cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
      });
      stderrSource = proc.stderr;
    } else {
      transport = new StdioClientTransport({
        command,
        args,
        env: serverEnv(options.env),
        cwd: dir,
        stderr: 'pipe',
      });
      stderrSource = transport.stderr;
    }
    const server = new McpServer(transport, dir, work, proc);
    stderrSource.on('data', (chunk) => server.stderrText += chunk.toString());
    server.client = new Client({ name: 'process-mcp-e2e', version: '1.0.0' },
      { capabilities: {} });
    server.client.onerror = (error) => server.clientErrors.push(error);
    try {
      if (proc) {
        const port = await until(() => {
          if (proc.exitCode !== null || proc.signalCode !== null) {
            throw new Error(`the server exited (${proc.exitCode ?? proc.signalCode}) ` +
              'before it listened');
          }
          try {
            return readFileSync(portFile, 'utf8').trim() || null;
          } catch {
            return null;
          }
        }, 10000, 'the HTTP transport to write its port file');
        server.transport = new StreamableHTTPClientTransport(
          new URL(`http://127.0.0.1:${port}/mcp`));
      }
      await server.client.connect(server.transport, { timeout: 10000 });
      // Like a real client: list the tools, so the SDK validates every result against the
      // tool's outputSchema.
      if (options.listTools !== false) await server.client.listTools();
    } catch (error) {
      await server.close();
      error.message += server.stderrTail();
      throw error;
    }
    return server;
  }

  constructor(transport, dir, work, proc) {
    this.transport = transport;
    this.proc = proc;        // the server process when the client speaks HTTP
    this.dir = dir;
    this.work = work;
    this.stderrText = '';
    this.clientErrors = [];
  }

  get pid() {
    return this.proc ? this.proc.pid : this.transport.pid;
  }

  stderrTail(chars = 3000) {
    const text = this.stderrText.slice(-chars);
    return text ? `\n--- server stderr (tail) ---\n${text}` : '\n(server stderr empty)';
  }

  // The raw CallToolResult, after checking the content/structuredContent agreement.
  async call(name, args = {}, options = {}) {
    let result;
    try {
      result = await this.client.callTool({ name, arguments: args }, undefined,
        { timeout: 90000, ...options });
    } catch (error) {
      error.message += ` (tools/call ${name} ${JSON.stringify(args)})${this.stderrTail()}`;
      throw error;
    }
    assert.ok(Array.isArray(result.content), `${name}: result has no content array`);
    const texts = result.content.filter((item) => item.type === 'text');
    assert.ok(texts.length >= 1, `${name}: result has no text content: ${JSON.stringify(result)}`);
    if (!result.isError) {
      assert.ok(result.structuredContent && typeof result.structuredContent === 'object',
        `${name}: result has no structuredContent: ${JSON.stringify(result)}`);
      let parsed;
      try {
        parsed = JSON.parse(texts[0].text);
      } catch {
        assert.fail(`${name}: text content is not JSON: ${texts[0].text}`);
      }
      assert.deepStrictEqual(parsed, result.structuredContent,
        `${name}: text content and structuredContent differ`);
    }
    return result;
  }

  // structuredContent of a successful call; a tool error fails the test with its message.
  async tool(name, args = {}, options = {}) {
    const result = await this.call(name, args, options);
    if (result.isError) {
      assert.fail(`${name} ${JSON.stringify(args)} returned an error: ` +
        `${result.content.map((item) => item.text).join('\n')}${this.stderrTail()}`);
    }
    return result.structuredContent;
  }

  // The message of a call that must fail with isError: true.
  async toolError(name, args = {}) {
    const result = await this.call(name, args);
    const text = result.content.filter((item) => item.type === 'text')
      .map((item) => item.text).join('\n');
    assert.equal(result.isError, true,
      `${name} ${JSON.stringify(args)} should be a tool error, got: ${text}`);
    assert.ok(text.length > 0, `${name}: error without a message`);
    return text;
  }

  spawn(args, options) {
    return this.tool('spawn', args, options);
  }

  async ps() {
    return (await this.tool('ps', {})).processes;
  }

  async psEntry(id) {
    const entry = (await this.ps()).find((p) => p.pid === id);
    assert.ok(entry, `process ${id} not listed by ps`);
    return entry;
  }

  stdout(id, lines) {
    return this.tool('stdout', lines === undefined ? { id } : { id, lines });
  }

  stdin(id, input) {
    return this.tool('stdin', { id, input });
  }

  kill(id, signal) {
    return this.tool('kill', signal === undefined ? { id } : { id, signal });
  }

  // Polls `stdout` until its text (stdout + stderr) matches pattern; returns the stdout result.
  waitOutput(id, pattern, timeoutMs = 10000, lines = 200) {
    const matches = typeof pattern === 'string' ?
      (text) => text.includes(pattern) : (text) => pattern.test(text);
    return until(async (seen) => {
      const out = await this.stdout(id, lines);
      seen(out);
      return matches(`${out.stdout}\n${out.stderr}`) ? out : null;
    }, timeoutMs, `output of ${id} to match ${pattern}`);
  }

  // Polls `stdout` until the process has terminated; returns the stdout result.
  waitExit(id, timeoutMs = 10000) {
    return until(async (seen) => {
      const out = await this.stdout(id, 200);
      seen(out);
      return out.status === 'terminated' ? out : null;
    }, timeoutMs, `${id} to terminate`);
  }

  async close() {
    try {
      await this.client?.close();
    } catch {
      // already gone
    }
    await this.transport?.close().catch(() => {});
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      // Over HTTP the server runs until it is told to stop: SIGTERM, as a service manager does.
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}

// Registers a server for the tests of a `describe` block (or file): started before, closed after.
// Usage: const srv = useServer(); ... srv().spawn(...)
export function useServer(hooks, options = {}) {
  let server;
  hooks.before(async () => {
    server = await McpServer.start(options);
  });
  hooks.after(async () => {
    await server?.close();
  });
  return () => server;
}

// The server driven with raw newline-delimited JSON-RPC, for what the SDK client cannot send.
export class RawServer {
  static async start(options = {}) {
    const { dir, configPath } = await prepareConfig(options);
    const proc = spawnChild(SERVER, ['--config', configPath], {
      env: serverEnv(options.env), cwd: dir, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const raw = new RawServer(proc, dir);
    await new Promise((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    return raw;
  }

  constructor(proc, dir) {
    this.proc = proc;
    this.dir = dir;
    this.lines = [];        // every stdout line, as text
    this.messages = [];     // every stdout line, parsed (or {unparsable: text})
    this.waiters = [];
    this.stderrText = '';
    this.nextId = 1;
    this.exited = null;
    let pending = '';
    proc.stdout.on('data', (chunk) => {
      pending += chunk.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        if (line === '') continue;
        this.lines.push(line);
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          message = { unparsable: line };
        }
        this.messages.push(message);
        this.waiters = this.waiters.filter((w) => !w(message));
      }
    });
    proc.stderr.on('data', (chunk) => this.stderrText += chunk.toString());
    proc.on('exit', (code, signal) => { this.exited = { code, signal }; });
  }

  get pid() {
    return this.proc.pid;
  }

  // The server's exit status ({ code, signal }), once it has exited; fails after timeoutMs.
  waitExit(timeoutMs = 15000) {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `the server did not exit within ${timeoutMs} ms${this.stderrTail()}`)), timeoutMs);
      this.proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  }

  stderrTail(chars = 3000) {
    const text = this.stderrText.slice(-chars);
    return text ? `\n--- server stderr (tail) ---\n${text}` : '\n(server stderr empty)';
  }

  sendRaw(text) {
    this.proc.stdin.write(text);
  }

  send(message) {
    this.sendRaw(`${JSON.stringify(message)}\n`);
  }

  // The first message (already received or coming) for which pred is true.
  waitMessage(pred, timeoutMs = 5000, what = 'a message') {
    const found = this.messages.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ` +
          `exit: ${JSON.stringify(this.exited)}; stdout lines: ` +
          `${JSON.stringify(this.lines.slice(-5))}${this.stderrTail()}`));
      }, timeoutMs);
      const waiter = (message) => {
        if (!pred(message)) return false;
        clearTimeout(timer);
        resolve(message);
        return true;
      };
      this.waiters.push(waiter);
    });
  }

  // Sends a request and resolves with its response (result or error).
  request(method, params, timeoutMs = 5000) {
    const id = this.nextId++;
    const message = { jsonrpc: '2.0', id, method };
    if (params !== undefined) message.params = params;
    this.send(message);
    return this.waitMessage((m) => m.id === id && ('result' in m || 'error' in m), timeoutMs,
      `the response to ${method} (id ${id})`);
  }

  notify(method, params) {
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) message.params = params;
    this.send(message);
  }

  // Generous: in docker mode the server's start runs commands in its container first (the sweep
  // of leftovers and its guard), which an engine busy with other tests beside this one took more
  // than 5 s to do once.
  async initialize(protocolVersion = '2025-11-25') {
    const response = await this.request('initialize', {
      protocolVersion,
      capabilities: {},
      clientInfo: { name: 'process-mcp-e2e-raw', version: '1.0.0' },
    }, 30000);
    this.notify('notifications/initialized');
    return response;
  }

  async close() {
    if (this.exited === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.stdin.end();
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}

// Host processes (pid and full command line) whose command line contains `needle`.
export function hostProcesses(needle) {
  // A busy machine's process table is larger than execFileSync's default 1 MiB buffer.
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const space = line.indexOf(' ');
      return { pid: Number(line.slice(0, space)), args: line.slice(space + 1) };
    })
    .filter((p) => p.args.includes(needle) && p.pid !== process.pid);
}

// A number that makes `sleep N` command lines unique to this run, so that checks on host
// processes cannot be confused by other sleeps on the machine.
export function uniqueSleep(base) {
  return `${base}${String(process.pid % 1000).padStart(3, '0')}${Math.floor(Math.random() * 1000)}`;
}
