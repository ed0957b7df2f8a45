// The server's own life: when it ends (end of input, SIGTERM, even SIGKILL) no process it
// started is left behind.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { hostProcesses, ID_PREFIX, McpServer, RawServer, uniqueSleep, until } from './lib/server.mjs';

const sleepsOf = (duration) => hostProcesses(`sleep ${duration}`);

// Starts `sleep D` processes through a raw session: a pipe one, a TTY one, and one that ignores
// SIGTERM. Returns the durations.
async function startSleeps(raw) {
  const durations = [uniqueSleep('3345.'), uniqueSleep('3346.'), uniqueSleep('3347.')];
  const calls = [
    { command: `sleep ${durations[0]}`, background: true },
    { command: `sleep ${durations[1]}`, background: true, tty: true },
    { command: `trap '' TERM; sleep ${durations[2]}`, background: true },
  ];
  for (const args of calls) {
    const response = await raw.request('tools/call', { name: 'spawn', arguments: args });
    assert.equal(response.error, undefined, JSON.stringify(response.error));
    assert.notEqual(response.result.isError, true, JSON.stringify(response.result));
  }
  for (const d of durations) {
    await until(() => sleepsOf(d).some((p) => p.args.startsWith('sleep')), 5000,
      `sleep ${d} to start`);
  }
  return durations;
}

describe('server lifecycle', () => {
  test('after the server is SIGKILLed, none of its processes survive', async () => {
    const server = await McpServer.start();
    const pipeSleep = uniqueSleep('2345.');
    const ttySleep = uniqueSleep('2346.');
    try {
      await server.spawn({ command: `sleep ${pipeSleep}`, background: true });
      await server.spawn({ command: `sleep ${ttySleep}`, background: true, tty: true });
      await until(() => sleepsOf(pipeSleep).length > 0 && sleepsOf(ttySleep).length > 0,
        5000, 'both sleeps to start');
      process.kill(server.pid, 'SIGKILL');
      await until(() => sleepsOf(pipeSleep).length === 0 && sleepsOf(ttySleep).length === 0,
        5000, 'the sleeps to end after the server was killed',
      );
    } finally {
      await server.close();
      for (const p of [...sleepsOf(pipeSleep), ...sleepsOf(ttySleep)]) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });

  test('at the end of its input the server exits and ends its processes', async () => {
    const raw = await RawServer.start();
    let durations = [];
    try {
      await raw.initialize();
      durations = await startSleeps(raw);
      const started = Date.now();
      raw.proc.stdin.end();
      const exit = await raw.waitExit(10000);
      assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}${raw.stderrTail()}`);
      assert.ok(Date.now() - started < 8000);
      await until(() => durations.every((d) => sleepsOf(d).length === 0), 5000,
        'every process of the server to end');
    } finally {
      await raw.close();
      for (const d of durations) {
        for (const p of sleepsOf(d)) {
          try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
    }
  });

  test('on SIGTERM the server exits and ends its processes', async () => {
    const raw = await RawServer.start();
    let durations = [];
    try {
      await raw.initialize();
      durations = await startSleeps(raw);
      raw.proc.kill('SIGTERM');
      const exit = await raw.waitExit(10000);
      assert.ok(exit.code === 0 || exit.signal === 'SIGTERM',
        `exit ${JSON.stringify(exit)}${raw.stderrTail()}`);
      await until(() => durations.every((d) => sleepsOf(d).length === 0), 5000,
        'every process of the server to end');
    } finally {
      await raw.close();
      for (const d of durations) {
        for (const p of sleepsOf(d)) {
          try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
    }
  });

  test('a fresh server numbers its processes from host-1 and lists only its own', async () => {
    const first = await McpServer.start();
    const a = await first.spawn({ command: 'echo one' });
    await first.close();
    const second = await McpServer.start();
    try {
      const b = await second.spawn({ command: 'echo two' });
      assert.equal(a.pid, `${ID_PREFIX}-1`);
      assert.equal(b.pid, `${ID_PREFIX}-1`);
      const ps = await second.ps();
      assert.deepEqual(ps.map((p) => p.command), ['echo two']);
    } finally {
      await second.close();
    }
  });
});
