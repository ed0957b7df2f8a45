// Faults of the Docker engine and of the container under a running server (docker executor
// only: tests/e2e/CMakeLists.txt registers files named docker-*.test.mjs for e2e-docker alone).
//   - dockerd restarts while calls run: they end with a clear error, not a hang; calls made
//     while it is down fail at once and say why; the next call after it is back works.
//   - the container is removed from outside: the call in flight ends clearly, the next call
//     creates the container again (use_existing: a clear error until it exists again).
//   - the server is SIGKILLed while its guard cannot act: the next server to start on the
//     container kills what was left, and never what a live server runs.
// The engine is restarted the way scripts/docker-test-env.sh starts it (that script is run to
// start it again), and it is started again whatever happens to a test. Needs root, as the
// docker tests do in CI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  DOCKER, EXECUTOR, McpServer, e2eContainer, hostProcesses, sleep, uniqueSleep, until,
} from './lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ENV_SCRIPT = path.resolve(here, '..', '..', 'scripts', 'docker-test-env.sh');
const PID_FILE = '/var/run/docker.pid';
// Containers of the tests' own: the small image (the storage driver copies an image's files
// for every container it creates).
const SMALL_IMAGE = 'pmcp-test-busybox:latest';

assert.equal(EXECUTOR, 'docker', 'docker-faults runs with PMCP_E2E_EXECUTOR=docker only');

function docker(...args) {
  return execFileSync(DOCKER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function engineUp() {
  try {
    docker('version', '-f', '{{.Server.Version}}');
    return true;
  } catch {
    return false;
  }
}

function enginePid() {
  try {
    return Number(readFileSync(PID_FILE, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

// Starts dockerd as the test environment does, unless it answers already. Synchronous, so that
// it also runs from process.on('exit').
function startEngine() {
  if (engineUp()) return;
  execFileSync('bash', [ENV_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  assert.ok(engineUp(), 'dockerd did not come back');
}

// Stops dockerd with signal and waits until its process is gone.
async function stopEngine(signal) {
  const pid = enginePid();
  assert.ok(pid > 0, `no dockerd pid in ${PID_FILE}: was the engine started by ${ENV_SCRIPT}?`);
  process.kill(pid, signal);
  await until(() => !existsSync(`/proc/${pid}`), 60000, `dockerd (${pid}) to exit`, 100);
}

process.on('exit', () => {
  try { startEngine(); } catch { /* reported by the tests */ }
});
after(() => startEngine());

// A promise that rejects after ms: a call that hangs fails the test instead of holding it.
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
    }),
  ]);
}

const text = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text)
  .join('\n');
const sleepsOf = (duration) => hostProcesses(`sleep ${duration}`)
  .filter((p) => p.args.startsWith('sleep'));

describe('docker faults', () => {
  test('dockerd restarts: calls in flight end with a clear error, the next call works',
    async () => {
      assert.ok(process.getuid() === 0, 'restarting dockerd needs root');
      const server = await McpServer.start();
      const fgSleep = uniqueSleep('5101.');
      const bgSleep = uniqueSleep('5102.');
      try {
        const bg = await server.spawn({ command: `sleep ${bgSleep}`, background: true });
        const inFlight = server.call('spawn', { command: `sleep ${fgSleep}`, timeoutMs: 60000 });
        await until(() => sleepsOf(fgSleep).length > 0 && sleepsOf(bgSleep).length > 0, 10000,
          'both sleeps to run');
        const stopped = Date.now();
        await stopEngine('SIGTERM');

        // The foreground call ended (no hang) and says what happened to its process.
        const fg = await within(inFlight, 30000, 'the call in flight');
        const fgText = text(fg);
        const endedAfter = Date.now() - stopped;
        assert.equal(fg.structuredContent?.status, 'terminated', fgText);
        assert.match(fgText, /docker|engine|container/i, fgText);

        // While the engine is down a call fails at once and names the engine.
        const started = Date.now();
        const down = await within(server.call('spawn', { command: 'echo while-down' }), 20000,
          'a spawn while dockerd is down');
        assert.equal(down.isError, true, text(down));
        assert.match(text(down), /docker/i);
        assert.ok(Date.now() - started < 15000, `took ${Date.now() - started} ms`);
        // The server itself answers.
        await within(server.client.ping(), 5000, 'ping while dockerd is down');

        startEngine();
        // The next call works: the stopped container is started again.
        const back = await within(server.spawn({ command: 'echo back-again' }), 60000,
          'the first spawn after the restart');
        assert.equal(back.stdout, 'back-again\n');
        assert.equal(back.exitCode, 0);
        // The background process ended with the container, and ps says why.
        await server.waitExit(bg.pid, 10000);
        const bgEntry = await server.psEntry(bg.pid);
        console.log(`in flight (ended ${endedAfter} ms after the engine was told to stop): ` +
          `${fgText}\nwhile down: ${text(down)}\n` +
          `in the background: ${JSON.stringify(bgEntry.message)}`);
        assert.match(bgEntry.message ?? '', /docker|engine|container/i, JSON.stringify(bgEntry));
      } finally {
        startEngine();
        await server.close();
      }
    });

  test('the container is removed from outside: a clear error, then it is created again',
    async () => {
      const name = `pmcp-e2e-rm-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
      const server = await McpServer.start({
        workdir: false,
        config: {
          docker: { container: name, use_existing: false, image: SMALL_IMAGE, volume: '',
            network: 'none' },
        },
      });
      const fgSleep = uniqueSleep('5201.');
      try {
        const firstId = docker('inspect', '-f', '{{.Id}}', name);
        const inFlight = server.call('spawn', { command: `sleep ${fgSleep}`, timeoutMs: 60000 });
        await until(() => sleepsOf(fgSleep).length > 0, 10000, 'the sleep to run');
        docker('rm', '-f', name);
        const fg = await within(inFlight, 30000, 'the call in flight');
        assert.equal(fg.structuredContent?.status, 'terminated', text(fg));
        assert.match(text(fg), new RegExp(`container '${name}'`), text(fg));
        console.log(`in flight: ${text(fg)}`);

        const back = await within(server.spawn({ command: 'echo recreated' }), 60000,
          'the first spawn after the removal');
        assert.equal(back.stdout, 'recreated\n');
        const secondId = docker('inspect', '-f', '{{.Id}}', name);
        assert.notEqual(secondId, firstId, 'the container was not created again');
      } finally {
        await server.close();
        try { docker('rm', '-f', name); } catch { /* removed by the server */ }
      }
    });

  test('use_existing: a removed container is a clear error until it exists again', async () => {
    const name = `pmcp-e2e-rmx-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    docker('run', '-d', '--name', name, '--network', 'none', SMALL_IMAGE, 'sleep', 'infinity');
    let server;
    try {
      server = await McpServer.start({
        workdir: false, config: { docker: { container: name, use_existing: true } },
      });
      assert.equal((await server.spawn({ command: 'echo one' })).stdout, 'one\n');
      docker('rm', '-f', name);
      const gone = await within(server.call('spawn', { command: 'echo two' }), 20000,
        'a spawn after the removal');
      assert.equal(gone.isError, true, text(gone));
      assert.match(text(gone), new RegExp(`container '${name}' does not exist`));
      assert.match(text(gone), /use_existing/);
      docker('run', '-d', '--name', name, '--network', 'none', SMALL_IMAGE, 'sleep', 'infinity');
      assert.equal((await server.spawn({ command: 'echo three' })).stdout, 'three\n');
    } finally {
      await server?.close();
      try { docker('rm', '-f', name); } catch { /* gone */ }
    }
  });

  // The guard kills a SIGKILLed server's processes as soon as the engine closes its input. Here
  // it cannot (stopped, then killed), as when the server dies while its guard is down: the
  // next server on the container finds what is left and kills it.
  test('after a SIGKILL the guard could not act on, the next server kills the leftovers',
    async () => {
      const container = e2eContainer().name;
      const leftover = uniqueSleep('5301.');
      const first = await McpServer.start();
      let second;
      try {
        await first.spawn({ command: `sleep ${leftover}`, background: true });
        await until(() => sleepsOf(leftover).length > 0, 10000, 'the sleep to run');
        const guards = docker('exec', container, 'ps', '-eo', 'pid=,args=').split('\n')
          .map((line) => line.trim())
          .filter((line) => line.includes('while read -r op n'))
          .map((line) => line.split(' ')[0]);
        assert.ok(guards.length > 0, 'no guard process in the container');
        docker('exec', container, 'kill', '-STOP', ...guards);
        process.kill(first.pid, 'SIGKILL');
        await sleep(1500);
        assert.equal(sleepsOf(leftover).length, 1, 'the stopped guard should not have acted');
        docker('exec', container, 'kill', '-KILL', ...guards);
        await sleep(500);
        assert.equal(sleepsOf(leftover).length, 1, 'the sleep should outlive its guard');

        second = await McpServer.start();
        await until(() => sleepsOf(leftover).length === 0, 10000,
          'the next server to kill the leftover sleep');
        await until((seen) => {
          seen(second.stderrText);
          return /killed \d+ process(es)? left in container/.test(second.stderrText);
        }, 5000, 'the server to log what it killed');
        // The new server works as usual.
        assert.equal((await second.spawn({ command: 'echo fine' })).stdout, 'fine\n');
      } finally {
        await first.close();
        await second?.close();
        for (const p of sleepsOf(leftover)) {
          try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
    });

  test('a server starting on a shared container leaves a live server\'s processes alone',
    async () => {
      const kept = uniqueSleep('5401.');
      const first = await McpServer.start();
      let second;
      try {
        const bg = await first.spawn({ command: `sleep ${kept}`, background: true });
        await until(() => sleepsOf(kept).length > 0, 10000, 'the sleep to run');
        second = await McpServer.start();
        assert.equal((await second.spawn({ command: 'echo second' })).stdout, 'second\n');
        await sleep(500);
        assert.equal(sleepsOf(kept).length, 1, 'the second server killed the first one\'s sleep');
        assert.equal((await first.psEntry(bg.pid)).status, 'running');
        assert.doesNotMatch(second.stderrText, /killed \d+ process/);
      } finally {
        await second?.close();
        await first.close();
      }
    });
});
