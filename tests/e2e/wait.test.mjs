// wait, and spawn's waitFor: return when a pattern appears in new output, the process exits, or
// the output goes quiet, within a timeout (docs/agent-tools.md). No test sleeps to wait for a
// condition: the server's own wait does the waiting.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, contextLines, waitExit, waitFor } from './lib/agent.mjs';
import { child, ID_PREFIX, useServer } from './lib/server.mjs';

describe('wait', () => {
  const srv = useServer({ before, after });

  test('python3 REPL driven by waiting for its prompt', async () => {
    const { pid } = await srv().spawn({ command: 'python3 -q', tty: true, background: true });
    try {
      const prompt = await waitFor(srv(), pid, { pattern: '^>>> ' }, { timeoutMs: 20000 });
      assert.equal(prompt.status, 'matched', JSON.stringify(prompt));
      assert.equal(prompt.id, pid);
      assert.equal(prompt.running, true);
      assert.equal(prompt.exitCode, null);
      assert.equal(prompt.match.text, '>>> ');
      assert.equal(prompt.match.stream, 'terminal');
      assert.equal(prompt.match.line, 1);
      assert.deepEqual(Object.keys(prompt.next), ['terminal']);
      assert.equal(typeof prompt.next.terminal, 'number');
      assert.equal(typeof prompt.waitedMs, 'number');

      const sent = await srv().tool('stdin', { id: pid, input: 'print(6*7)\\r' });
      assert.equal(sent.bytes, 11);
      // The default `since` is the last stdin write, past the echo of `print(6*7)`.
      const answer = await waitFor(srv(), pid, { pattern: '^42$' }, { timeoutMs: 10000 });
      assert.equal(answer.status, 'matched', JSON.stringify(answer));
      assert.equal(answer.match.text, '42');
      assert.equal(answer.match.line, 2);
      assert.ok(answer.next.terminal > prompt.next.terminal);

      const again = await waitFor(srv(), pid, { pattern: '^>>> ' },
        { since: answer.next, timeoutMs: 10000 });
      assert.equal(again.status, 'matched', JSON.stringify(again));
      assert.equal(again.match.text, '>>> ');
      assert.equal(again.match.line, 3);

      await srv().tool('stdin', { id: pid, keys: ['C-d'] });
      const end = await waitExit(srv(), pid);
      assert.equal(end.exitCode, 0);
      assert.equal(end.match, undefined);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('spawn with waitFor returns once a dev server listens; it then serves', async () => {
    await writeFile(path.join(srv().work, 'hello.txt'), 'served by http.server\n');
    const started = Date.now();
    const r = await srv().spawn({
      command: 'exec python3 -m http.server 0 --bind 127.0.0.1',
      env: { PYTHONUNBUFFERED: '1' },
      background: false,
      waitFor: { pattern: 'Serving HTTP on 127\\.0\\.0\\.1 port \\d+' },
      timeoutMs: 20000,
    });
    try {
      assert.equal(r.waitStatus, 'matched', JSON.stringify(r));
      assert.equal(r.status, 'running');
      assert.equal(r.exitCode, null);
      assert.ok(Date.now() - started < 15000, 'spawn did not return when the line appeared');
      assert.equal(r.match.stream, 'stdout');
      assert.equal(r.match.line, 1);
      const port = Number(/port (\d+)/.exec(r.match.text)[1]);
      assert.ok(port > 0 && port < 65536, `port ${port}`);
      // Fetched from where the server runs: the host, inside the container, or inside the host
      // sandbox, whose loopback network all the commands of one server share.
      const fetched = await srv().spawn({
        command: `python3 -c "import urllib.request as u; ` +
          `print(u.urlopen('http://127.0.0.1:${port}/hello.txt').read().decode(), end='')"`,
        timeoutMs: 20000,
      });
      assert.equal(fetched.exitCode, 0, JSON.stringify(fetched));
      assert.equal(fetched.stdout, 'served by http.server\n');
      // The request is logged on stderr; wait sees it there.
      const logged = await waitFor(srv(), r.pid,
        { pattern: '"GET /hello\\.txt HTTP/1\\.[01]" 200' },
        { stream: 'stderr', timeoutMs: 10000 });
      assert.equal(logged.status, 'matched', JSON.stringify(logged));
      assert.equal(logged.match.stream, 'stderr');
    } finally {
      await cleanup(srv(), r.pid);
    }
    const end = await waitExit(srv(), r.pid);
    assert.equal(end.signal, 'SIGKILL');
  });

  test('spawn waitFor: timeout and exit outcomes', async () => {
    const silent = await srv().spawn({
      command: 'exec sleep 30', waitFor: { pattern: 'never' }, timeoutMs: 300,
    });
    try {
      assert.equal(silent.waitStatus, 'timeout');
      assert.equal(silent.status, 'running');
    } finally {
      await cleanup(srv(), silent.pid);
    }
    const quick = await srv().spawn({
      command: 'echo done; exit 4', waitFor: { pattern: 'never' }, timeoutMs: 10000,
    });
    assert.equal(quick.waitStatus, 'exited');
    assert.equal(quick.status, 'terminated');
    assert.equal(quick.exitCode, 4);
    const quiet = await srv().spawn({
      command: 'echo hello; exec sleep 30', waitFor: { idleMs: 300 }, timeoutMs: 10000,
    });
    try {
      assert.equal(quiet.waitStatus, 'idle');
      assert.equal(quiet.status, 'running');
      assert.equal(quiet.stdout, 'hello\n');
    } finally {
      await cleanup(srv(), quiet.pid);
    }
    const ready = await srv().spawn({
      command: 'echo starting; echo READY now; exec sleep 30',
      waitFor: { pattern: 'ready', ignoreCase: true }, timeoutMs: 10000,
    });
    try {
      assert.equal(ready.waitStatus, 'matched');
      assert.equal(ready.match.text, 'READY');
      assert.equal(ready.match.line, 2);
    } finally {
      await cleanup(srv(), ready.pid);
    }
  });

  test('a silent process: timeout is a normal result, returned on time', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 5', background: true });
    try {
      const started = Date.now();
      const r = await waitFor(srv(), pid, { pattern: 'x' }, { timeoutMs: 300 });
      const elapsed = Date.now() - started;
      assert.equal(r.status, 'timeout');
      assert.equal(r.id, pid);
      assert.equal(r.running, true);
      assert.equal(r.exitCode, null);
      assert.equal(r.match, undefined);
      assert.deepEqual(r.next, { stdout: 0, stderr: 0 });
      assert.ok(r.waitedMs >= 290 && r.waitedMs < 2000, `waitedMs ${r.waitedMs}`);
      assert.ok(elapsed >= 290 && elapsed < 3000, `took ${elapsed} ms`);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('idleMs fires once the output has gone quiet', async () => {
    const { pid } = await srv().spawn({ command: 'echo once; exec sleep 30', background: true });
    try {
      const first = await waitFor(srv(), pid, { pattern: '^once$' }, { timeoutMs: 10000 });
      assert.equal(first.status, 'matched');
      const r = await waitFor(srv(), pid, { idleMs: 300 }, { timeoutMs: 10000 });
      assert.equal(r.status, 'idle', JSON.stringify(r));
      assert.equal(r.running, true);
      assert.deepEqual(r.next, { stdout: 5, stderr: 0 });
      assert.ok(r.waitedMs >= 250 && r.waitedMs < 5000, `waitedMs ${r.waitedMs}`);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('idleMs does not fire while output keeps coming', async () => {
    const { pid } = await srv().spawn({
      command: 'while :; do echo tick; sleep 0.05; done', background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: 'tick' }, { timeoutMs: 10000 });
      const r = await waitFor(srv(), pid, { idleMs: 1500 }, { timeoutMs: 2500 });
      assert.equal(r.status, 'timeout', JSON.stringify(r));
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('exit: status exited with the exit code; a pattern wait also ends at exit', async () => {
    const a = await srv().spawn({ command: 'echo bye; exit 7', background: true });
    const ra = await waitFor(srv(), a.pid, { exit: true }, { timeoutMs: 10000 });
    assert.equal(ra.status, 'exited');
    assert.equal(ra.running, false);
    assert.equal(ra.exitCode, 7);
    assert.deepEqual(ra.next, { stdout: 4, stderr: 0 });

    const b = await srv().spawn({ command: 'echo nothing here; exit 2', background: true });
    const rb = await waitFor(srv(), b.pid, { pattern: 'never' }, { timeoutMs: 10000 });
    assert.equal(rb.status, 'exited');
    assert.equal(rb.exitCode, 2);

    const c = await srv().spawn({ command: 'kill -TERM $$', background: true });
    const rc = await waitFor(srv(), c.pid, { exit: true }, { timeoutMs: 10000 });
    assert.equal(rc.status, 'exited');
    assert.equal(rc.signal, 'SIGTERM');
  });

  test('`since: next` finds the next occurrence; the match carries line and context', async () => {
    const { pid } = await srv().spawn({ command: 'seq 1 20; exec sleep 30', background: true });
    try {
      let since;
      for (const want of ['5', '15']) {
        const r = await waitFor(srv(), pid, { pattern: '^\\d5$|^5$' },
          since ? { since, timeoutMs: 10000 } : { timeoutMs: 10000 });
        assert.equal(r.status, 'matched', JSON.stringify(r));
        assert.equal(r.match.text, want);
        assert.equal(r.match.line, Number(want));
        assert.equal(r.match.stream, 'stdout');
        since = r.next;
      }
      // "1\n" .. "9\n" are 18 bytes, "10\n" .. "15" 17 more.
      assert.deepEqual(since, { stdout: 35, stderr: 0 });
      const none = await waitFor(srv(), pid, { pattern: '^\\d5$|^5$' }, { since, timeoutMs: 300 });
      assert.equal(none.status, 'timeout');

      const mid = await waitFor(srv(), pid, { pattern: '^10$' }, { timeoutMs: 10000 });
      const around = contextLines(mid.match.context).filter((line) => line !== '10');
      assert.deepEqual(around, ['7', '8', '9', '11', '12', '13']);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('the default since is the last stdin write', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} cat`, background: true });
    try {
      await srv().tool('stdin', { id: pid, input: 'one\\n' });
      const r1 = await waitFor(srv(), pid, { pattern: '^(one|two)$' }, { timeoutMs: 10000 });
      assert.equal(r1.match.text, 'one');
      assert.equal(r1.match.line, 1);
      await srv().tool('stdin', { id: pid, input: 'two\\n' });
      const r2 = await waitFor(srv(), pid, { pattern: '^(one|two)$' }, { timeoutMs: 10000 });
      assert.equal(r2.match.text, 'two');
      assert.equal(r2.match.line, 2);
      // An explicit since from the start finds the first line again.
      const r3 = await waitFor(srv(), pid, { pattern: '^(one|two)$' },
        { since: { stdout: 0, stderr: 0 }, timeoutMs: 10000 });
      assert.equal(r3.match.text, 'one');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('stream selects stdout or stderr', async () => {
    const { pid } = await srv().spawn({
      command: 'echo out; echo err >&2; exec sleep 30', background: true,
    });
    try {
      const e = await waitFor(srv(), pid, { pattern: '^(out|err)$' },
        { stream: 'stderr', timeoutMs: 10000 });
      assert.equal(e.status, 'matched');
      assert.equal(e.match.text, 'err');
      assert.equal(e.match.stream, 'stderr');
      assert.equal(e.match.line, 1);
      assert.equal(e.next.stderr, 3);
      const o = await waitFor(srv(), pid, { pattern: '^err$' },
        { stream: 'stdout', timeoutMs: 300 });
      assert.equal(o.status, 'timeout');
      const both = await waitFor(srv(), pid, { pattern: '^out$' }, { timeoutMs: 10000 });
      assert.equal(both.match.stream, 'stdout');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('ignoreCase and the multiline, CR LF aware dialect', async () => {
    const { pid } = await srv().spawn({
      command: "printf 'Hello World\\r\\nsecond\\n'; exec sleep 30", background: true,
    });
    try {
      const r = await waitFor(srv(), pid, { pattern: 'hello world$' },
        { ignoreCase: true, timeoutMs: 10000 });
      assert.equal(r.status, 'matched', JSON.stringify(r));
      assert.equal(r.match.text, 'Hello World');
      const cs = await waitFor(srv(), pid, { pattern: 'hello world' }, { timeoutMs: 300 });
      assert.equal(cs.status, 'timeout');
      const s = await waitFor(srv(), pid, { pattern: '^second$' }, { timeoutMs: 10000 });
      assert.equal(s.match.line, 2);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('$ does not match an unfinished line until the process exits', async () => {
    const { pid } = await srv().spawn({
      command: "printf 'abc'; read x; printf 'def'", background: true,
    });
    try {
      const early = await waitFor(srv(), pid, { pattern: 'abc$' }, { timeoutMs: 400 });
      assert.equal(early.status, 'timeout', JSON.stringify(early));
      const plain = await waitFor(srv(), pid, { pattern: 'abc' }, { timeoutMs: 10000 });
      assert.equal(plain.status, 'matched');
      await srv().tool('stdin', { id: pid, input: '\\n' });
      const end = await waitFor(srv(), pid, { pattern: 'abcdef$' },
        { since: { stdout: 0 }, timeoutMs: 10000 });
      assert.equal(end.status, 'matched', JSON.stringify(end));
      assert.equal(end.match.text, 'abcdef');
      assert.equal(end.running, false);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a match split across two writes is found', async () => {
    const { pid } = await srv().spawn({
      command: "printf 'abc'; read x; printf 'def\\n'; exec sleep 30", background: true,
    });
    try {
      const pending = waitFor(srv(), pid, { pattern: '^abcdef$' },
        { since: { stdout: 0 }, timeoutMs: 10000 });
      await waitFor(srv(), pid, { pattern: 'abc' }, { timeoutMs: 10000 });
      await srv().tool('stdin', { id: pid, input: '\\n' });
      const r = await pending;
      assert.equal(r.status, 'matched', JSON.stringify(r));
      assert.equal(r.match.text, 'abcdef');
      assert.equal(r.match.line, 1);
      assert.deepEqual(r.next, { stdout: 6, stderr: 0 });
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('concurrent waits on one process end independently', async () => {
    const { pid } = await srv().spawn({
      command: 'read x; echo go; read y; exit 9', background: true,
    });
    try {
      const onGo = waitFor(srv(), pid, { pattern: '^go$' }, { timeoutMs: 15000 });
      const onExit = waitFor(srv(), pid, { exit: true }, { timeoutMs: 15000 });
      const onIdle = waitFor(srv(), pid, { idleMs: 200 }, { timeoutMs: 15000 });
      assert.equal((await onIdle).status, 'idle');
      await srv().tool('stdin', { id: pid, input: '\\n' });
      const go = await onGo;
      assert.equal(go.status, 'matched');
      assert.equal(go.running, true);
      await srv().tool('stdin', { id: pid, input: '\\n' });
      const end = await onExit;
      assert.equal(end.status, 'exited');
      assert.equal(end.exitCode, 9);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a bad pattern is an error giving its position', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      const message = await srv().toolError('wait', { id: pid, until: { pattern: '(' } });
      assert.match(message, /position \d+/);
      const spawnMessage = await srv().toolError('spawn', {
        command: 'true', waitFor: { pattern: 'a[b' },
      });
      assert.match(spawnMessage, /position \d+/);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('argument errors: no condition, unknown process, bad since', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      await srv().toolError('wait', { id: pid, until: {} });
      assert.match(await srv().toolError('wait', { id: `${ID_PREFIX}-999999`, until: { exit: true } }),
        new RegExp(`${ID_PREFIX}-999999`));
      await srv().toolError('wait', { id: pid, until: { exit: true }, since: { stdout: -1 } });
      await srv().toolError('wait', { id: pid, until: { exit: true }, stream: 'sideways' });
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a cancelled wait sends no result; the server keeps serving', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      const controller = new AbortController();
      const pending = srv().call('wait', { id: pid, until: { pattern: 'never' }, timeoutMs: 2000 },
        { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('test cancels')), 200);
      await assert.rejects(pending);
      // Outlive the wait's own timeout, then check that no late response arrived.
      const other = await waitFor(srv(), pid, { pattern: 'never' }, { timeoutMs: 2500 });
      assert.equal(other.status, 'timeout');
      assert.deepEqual(srv().clientErrors.map(String), []);
      assert.equal((await srv().psEntry(pid)).status, 'running');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a wait sends progress when the request asks for it', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      const progress = [];
      const r = await srv().tool('wait', { id: pid, until: { pattern: 'never' }, timeoutMs: 2500 },
        { onprogress: (p) => progress.push(p) });
      assert.equal(r.status, 'timeout');
      assert.ok(progress.length >= 1, 'no progress notification during a 2.5 s wait');
      for (const p of progress) assert.equal(typeof p.progress, 'number');
    } finally {
      await cleanup(srv(), pid);
    }
  });
});

describe('wait timeouts from the config', () => {
  const srv = useServer({ before, after },
    { config: { defaults: { timeout_ms: 400, max_timeout_ms: 1500 } } });

  test('timeoutMs defaults to defaults.timeout_ms and is clamped to max_timeout_ms', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      const byDefault = await waitFor(srv(), pid, { pattern: 'never' });
      assert.equal(byDefault.status, 'timeout');
      assert.ok(byDefault.waitedMs >= 390 && byDefault.waitedMs < 1400,
        `waitedMs ${byDefault.waitedMs}`);
      assert.equal(byDefault.notice, undefined);
      const clamped = await waitFor(srv(), pid, { pattern: 'never' }, { timeoutMs: 60000 });
      assert.equal(clamped.status, 'timeout');
      assert.ok(clamped.waitedMs >= 1490 && clamped.waitedMs < 5000,
        `waitedMs ${clamped.waitedMs}`);
      assert.equal(typeof clamped.notice, 'string');
      assert.match(clamped.notice, /1500/);
    } finally {
      await cleanup(srv(), pid);
    }
  });
  // Patterns come from the model. One that the regex engine gives up on (catastrophic
  // backtracking) ends the wait with status "error" and says why; the server keeps serving.
  // Found by the output_matcher fuzz harness: the engine's exception used to end the server.
  test('a pattern too complex for the output is an error, not the end of the server', async () => {
    const { pid } = await srv().spawn({
      command: `printf '${'a'.repeat(60)}c\\n'; exec sleep 30`, background: true });
    try {
      const r = await waitFor(srv(), pid, { pattern: '(a*)*b' }, { timeoutMs: 10000 });
      assert.equal(r.status, 'error', JSON.stringify(r));
      assert.match(r.error, /backtracking/);
      assert.equal(r.running, true);
      const grep = await srv().toolError('stdout', { id: pid, grep: '(a*)*b' });
      assert.match(grep, /backtracking/);
      await srv().client.ping();
      const fine = await waitFor(srv(), pid, { pattern: 'a+c' }, { timeoutMs: 10000 });
      assert.equal(fine.status, 'matched', JSON.stringify(fine));
    } finally {
      await cleanup(srv(), pid);
    }
  });
});
