// kill: signals by name or number, to the whole process group, with the end reported.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { hostProcesses, uniqueSleep, until, useServer } from './lib/server.mjs';

// Starts `sleep` in the background and waits until it runs (the shell has exec'd it), so that
// a signal cannot fall into the shell's start-up, where dash catches SIGINT.
async function startSleep(srv, base) {
  const duration = uniqueSleep(base);
  const { pid } = await srv.spawn({ command: `exec sleep ${duration}`, background: true });
  await until(() => hostProcesses(`sleep ${duration}`).some((p) => p.args.startsWith('sleep')),
    5000, `sleep ${duration} to start`);
  return pid;
}

describe('kill', () => {
  const srv = useServer({ before, after });

  test('the default signal is SIGTERM and the end is reported', async () => {
    const pid = await startSleep(srv(), '60.');
    const started = Date.now();
    const r = await srv().kill(pid);
    assert.ok(Date.now() - started < 3000);
    assert.equal(r.id, pid);
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, null);
    const entry = await srv().psEntry(pid);
    assert.equal(entry.status, 'terminated');
    assert.equal(entry.signal, 'SIGTERM');
    assert.equal(entry.exitCode, null);
  });

  for (const [given, name] of [
    ['SIGINT', 'SIGINT'], ['INT', 'SIGINT'], ['9', 'SIGKILL'], [9, 'SIGKILL'],
    ['SIGKILL', 'SIGKILL'], ['HUP', 'SIGHUP'], [15, 'SIGTERM'], ['15', 'SIGTERM'],
  ]) {
    test(`signal ${JSON.stringify(given)} is ${name}`, async () => {
      const pid = await startSleep(srv(), '61.');
      try {
        const r = await srv().kill(pid, given);
        assert.equal(r.signal, name);
        assert.equal(r.status, 'terminated');
        const entry = await srv().psEntry(pid);
        assert.equal(entry.signal, name);
      } finally {
        await srv().kill(pid, 'SIGKILL').catch(() => {});
      }
    });
  }

  test('a process that handles SIGTERM reports its own exit code', async () => {
    const { pid } = await srv().spawn({
      command: "trap 'echo cleaning up; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
      background: true,
    });
    await srv().waitOutput(pid, 'ready');
    const r = await srv().kill(pid, 'TERM');
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, 7);
    const out = await srv().stdout(pid);
    assert.equal(out.stdout, 'ready\ncleaning up\n');
    assert.equal(out.exitCode, 7);
  });

  test('a process that ignores SIGTERM is still running after kill, and SIGKILL ends it',
    async () => {
      const duration = uniqueSleep('200.');
      const { pid } = await srv().spawn({
        command: `trap '' TERM; echo ready; sleep ${duration}`, background: true,
      });
      await srv().waitOutput(pid, 'ready');
      const started = Date.now();
      const r = await srv().kill(pid);
      const elapsed = Date.now() - started;
      assert.equal(r.signal, 'SIGTERM');
      assert.equal(r.status, 'running');
      assert.equal(r.exitCode, null);
      assert.ok(elapsed < 3000, `kill waited ${elapsed} ms`);
      assert.equal((await srv().psEntry(pid)).status, 'running');
      const k = await srv().kill(pid, 'SIGKILL');
      assert.equal(k.status, 'terminated');
      assert.equal(k.signal, 'SIGKILL');
      await until(() => hostProcesses(`sleep ${duration}`).length === 0, 5000,
        'the sleep to end');
    });

  test('SIGSTOP and SIGCONT are delivered; the process keeps running', async () => {
    const { pid } = await srv().spawn({
      command: 'while :; do echo tick; sleep 0.05; done', background: true,
    });
    try {
      await srv().waitOutput(pid, 'tick');
      const stopped = await srv().kill(pid, 'SIGSTOP');
      assert.equal(stopped.signal, 'SIGSTOP');
      assert.equal(stopped.status, 'running');
      const cont = await srv().kill(pid, 'CONT');
      assert.equal(cont.status, 'running');
      assert.equal((await srv().psEntry(pid)).status, 'running');
    } finally {
      await srv().kill(pid, 'SIGKILL');
    }
  });

  test('the whole process group is signalled: no child survives', async () => {
    const duration = uniqueSleep('1234.');
    const { pid } = await srv().spawn({
      command: `sleep ${duration} & sleep ${duration}; `, background: true,
    });
    await until(() => hostProcesses(`sleep ${duration}`)
      .filter((p) => p.args.startsWith('sleep')).length >= 2, 5000, 'both sleeps to start');
    const r = await srv().kill(pid);
    assert.equal(r.status, 'terminated');
    await until(() => hostProcesses(`sleep ${duration}`).length === 0, 5000,
      'every sleep started by the command to end');
  });

  test('bad signals are errors and the process is left alone', async () => {
    const { pid } = await srv().spawn({ command: 'sleep 60', background: true });
    try {
      for (const signal of ['SIGNOPE', 'NOPE', '-1', 65, 1000, 'SIG']) {
        const message = await srv().toolError('kill', { id: pid, signal });
        assert.match(message, /signal/i, `kill with ${JSON.stringify(signal)}: ${message}`);
      }
      assert.equal((await srv().psEntry(pid)).status, 'running');
    } finally {
      await srv().kill(pid, 'SIGKILL');
    }
  });
});
