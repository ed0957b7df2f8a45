// spawn, ps and stdout as a user sees them: foreground and background runs, exit codes and
// signals, timeouts that leave the process running, truncation, env and cwd, progress,
// a server that stays responsive, and cancellation.
import assert from 'node:assert/strict';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  child, EXECUTOR, ID_PREFIX, MAX_TIMEOUT_MS, McpServer, OUTPUT_TRUNCATE, until, useServer,
} from './lib/server.mjs';

const ID = new RegExp(`^${ID_PREFIX}-\\d+$`);
const idNumber = (id) => Number(id.slice(`${ID_PREFIX}-`.length));

describe('spawn', () => {
  const srv = useServer({ before, after });

  test('a foreground command returns its output and exit code', async () => {
    const r = await srv().spawn({ command: 'echo hello' });
    assert.match(r.pid, ID);
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, '');
    assert.equal(r.timeoutMs, 10000, 'default timeout is 10000 ms');
    assert.ok(r.signal === undefined || r.signal === null, `signal: ${r.signal}`);
    assert.equal(r.notice, undefined);
  });

  test('the command runs under /bin/sh -c, with pipes, quotes and redirections', async () => {
    const r = await srv().spawn({ command: `printf '%s|' a "b c" | tr a-z A-Z; echo; echo err >&2` });
    assert.equal(r.stdout, 'A|B C|\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('a non-zero exit code is reported', async () => {
    const r = await srv().spawn({ command: 'echo partial; exit 3' });
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'partial\n');
  });

  test('stderr is kept apart from stdout', async () => {
    const r = await srv().spawn({ command: 'echo oops >&2' });
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'oops\n');
    assert.equal(r.exitCode, 0);
  });

  test('a command ended by a signal reports the signal name', async () => {
    const r = await srv().spawn({ command: 'kill -KILL $$' });
    assert.equal(r.status, 'terminated');
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.exitCode, null);
    const entry = await srv().psEntry(r.pid);
    assert.equal(entry.signal, 'SIGKILL');
    assert.equal(entry.exitCode, null);
  });

  test('ids are host-N, distinct and increasing (never reused)', async () => {
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await srv().spawn({ command: 'true' })).pid);
    ids.push((await srv().spawn({ command: 'sleep 5', background: true })).pid);
    await srv().kill(ids.at(-1), 'SIGKILL');
    ids.push((await srv().spawn({ command: 'true' })).pid);
    for (const id of ids) assert.match(id, ID);
    assert.equal(new Set(ids).size, ids.length, `ids repeat: ${ids}`);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(idNumber(ids[i]) > idNumber(ids[i - 1]), `ids not increasing: ${ids}`);
    }
  });

  test('a foreground command that outlives timeoutMs is left running in the background',
    async () => {
      const started = Date.now();
      const r = await srv().spawn({
        command: 'echo before; sleep 1.5; echo after; sleep 30', timeoutMs: 700,
      });
      const elapsed = Date.now() - started;
      try {
        assert.equal(r.status, 'running');
        assert.equal(r.exitCode, null);
        assert.equal(r.timeoutMs, 700);
        assert.equal(r.stdout, 'before\n');
        assert.ok(elapsed >= 600, `returned after ${elapsed} ms, before the timeout`);
        assert.ok(elapsed < 5000, `returned after ${elapsed} ms`);
        assert.equal((await srv().psEntry(r.pid)).status, 'running');
        // Output keeps accumulating after the call returned.
        const out = await srv().waitOutput(r.pid, 'after', 10000);
        assert.equal(out.stdout, 'before\nafter\n');
        assert.equal(out.status, 'running');
      } finally {
        await srv().kill(r.pid, 'SIGKILL');
      }
    });

  test('timeoutMs above the maximum is clamped to 60000 with a notice', async () => {
    const r = await srv().spawn({ command: 'echo quick', timeoutMs: 120000 });
    assert.equal(r.timeoutMs, MAX_TIMEOUT_MS);
    assert.equal(typeof r.notice, 'string', 'a clamped timeout must come with a notice');
    assert.match(r.notice, /60000|60 ?s|clamp|max/i);
    assert.equal(r.stdout, 'quick\n');
    assert.equal(r.status, 'terminated');
    const exact = await srv().spawn({ command: 'true', timeoutMs: MAX_TIMEOUT_MS });
    assert.equal(exact.timeoutMs, MAX_TIMEOUT_MS);
    assert.equal(exact.notice, undefined);
  });

  test(`output beyond ${OUTPUT_TRUNCATE} characters is cut at the front with a marker`,
    async () => {
      const full = Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join('');
      assert.ok(full.length > OUTPUT_TRUNCATE);
      const r = await srv().spawn({ command: 'seq 1 5000; seq 1 5000 >&2' });
      assert.equal(r.exitCode, 0);
      for (const stream of ['stdout', 'stderr']) {
        const text = r[stream];
        assert.ok(text.length < full.length, `${stream} was not truncated`);
        assert.ok(text.length <= OUTPUT_TRUNCATE + 300, `${stream} is ${text.length} characters`);
        assert.ok(text.endsWith('4999\n5000\n'), `${stream} does not keep the end`);
        const lines = text.split('\n');
        const markerIndex = lines.findIndex((line) => /truncated/i.test(line));
        assert.ok(markerIndex >= 0, `${stream} has no line saying "truncated":\n` +
          text.slice(0, 300));
        const marker = lines[markerIndex];
        const kept = lines.slice(markerIndex + 1).join('\n');
        assert.ok(full.endsWith(kept), `${stream}: the text after the marker is not the end`);
        assert.ok(kept.length >= OUTPUT_TRUNCATE - 300,
          `${stream}: only ${kept.length} characters kept`);
        const numbers = (marker.match(/\d+/g) ?? []).map(Number);
        const cut = full.length - kept.length;
        assert.ok(numbers.some((n) => Math.abs(n - cut) <= 1),
          `${stream}: marker "${marker}" should say that ${cut} characters were cut`);
      }
    });

  test('output up to the limit is returned whole', async () => {
    const r = await srv().spawn({ command: 'seq 1 1000' });
    const full = Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join('');
    assert.equal(r.stdout, full);
  });

  test('background: true returns at once with status running', async () => {
    const started = Date.now();
    const r = await srv().spawn({ command: 'sleep 30', background: true });
    const elapsed = Date.now() - started;
    try {
      assert.match(r.pid, ID);
      assert.equal(r.status, 'running');
      assert.equal(r.exitCode, null);
      assert.ok(elapsed < 2000, `background spawn took ${elapsed} ms`);
      const entry = await srv().psEntry(r.pid);
      assert.equal(entry.status, 'running');
      assert.equal(entry.command, 'sleep 30');
    } finally {
      await srv().kill(r.pid, 'SIGKILL');
    }
  });

  test('a background process that ends is reported terminated with its exit code', async () => {
    const r = await srv().spawn({ command: 'echo bg-out; exit 4', background: true });
    const out = await srv().waitExit(r.pid);
    assert.equal(out.exitCode, 4);
    assert.equal(out.stdout, 'bg-out\n');
    const entry = await srv().psEntry(r.pid);
    assert.equal(entry.status, 'terminated');
    assert.equal(entry.exitCode, 4);
  });

  test('env values are set in the child', async () => {
    const r = await srv().spawn({
      command: 'printf "%s|%s|%s\\n" "$FOO" "$BAR" "$EMPTY_ONE"',
      env: { FOO: 'foo value', BAR: 'x=y;$HOME', EMPTY_ONE: '' },
    });
    assert.equal(r.stdout, 'foo value|x=y;$HOME|\n');
  });

  test('cwd defaults to the configured workdir', async () => {
    const r = await srv().spawn({ command: 'pwd' });
    assert.equal(r.stdout, `${await realpath(srv().work)}\n`);
  });

  test('cwd is honoured', async () => {
    const sub = path.join(srv().work, 'sub dir');
    await mkdir(sub, { recursive: true });
    const r = await srv().spawn({ command: 'pwd', cwd: sub });
    assert.equal(r.stdout, `${await realpath(sub)}\n`);
    assert.equal((await srv().psEntry(r.pid)).cwd, sub);
  });

  test('a cwd that does not exist is an error, not a silent run elsewhere', async () => {
    const missing = path.join(srv().work, 'no-such-dir');
    const result = await srv().call('spawn', { command: 'pwd', cwd: missing });
    if (result.isError) {
      const text = result.content.map((c) => c.text).join('\n');
      assert.match(text, /no-such-dir|cwd|directory/i);
    } else {
      const r = result.structuredContent;
      assert.notEqual(r.exitCode, 0, `ran in ${r.stdout}`);
      assert.ok(!r.stdout.includes(srv().work), `ran in ${r.stdout}`);
    }
  });
});

describe('output fidelity', () => {
  const srv = useServer({ before, after });

  test('the output of a quick command is complete on every run', async () => {
    const block = 'x'.repeat(3000);
    for (let i = 0; i < 25; i++) {
      const r = await srv().spawn({ command: `printf '%s' '${block}'; echo " run-${i}"; echo e-${i} >&2` });
      assert.equal(r.status, 'terminated', `run ${i}`);
      assert.equal(r.stdout, `${block} run-${i}\n`, `run ${i}`);
      assert.equal(r.stderr, `e-${i}\n`, `run ${i}`);
    }
  });

  test('parallel foreground spawns each get their own result', async () => {
    const runs = Array.from({ length: 8 }, (_, i) => srv().spawn({
      command: `sleep 0.${8 - i}; echo parallel-${i}; exit ${i}`,
    }));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      assert.equal(r.stdout, `parallel-${i}\n`);
      assert.equal(r.exitCode, i);
    });
    assert.equal(new Set(results.map((r) => r.pid)).size, results.length);
  });

  test('unicode passes through commands, env and output', async () => {
    const r = await srv().spawn({ command: 'echo "héllo ✓ $WORD 😀"', env: { WORD: 'ünï' } });
    assert.equal(r.stdout, 'héllo ✓ ünï 😀\n');
  });

  test(`exactly ${OUTPUT_TRUNCATE} characters are returned whole, one more is cut`, async () => {
    const whole = await srv().spawn({ command: `head -c ${OUTPUT_TRUNCATE} /dev/zero | tr '\\0' a` });
    assert.equal(whole.stdout, 'a'.repeat(OUTPUT_TRUNCATE));
    const cut = await srv().spawn({ command: `head -c ${OUTPUT_TRUNCATE + 1} /dev/zero | tr '\\0' b` });
    const lines = cut.stdout.split('\n');
    const marker = lines.findIndex((l) => /truncated/i.test(l));
    assert.ok(marker >= 0, cut.stdout.slice(0, 200));
    assert.match(lines[marker], /\b1\b/);
    assert.equal(lines.slice(marker + 1).join('\n'), 'b'.repeat(OUTPUT_TRUNCATE));
  });

  test('truncation counts characters, not bytes, and never splits one', async () => {
    const r = await srv().spawn({ command: `python3 -c "print('é' * 9000 + '😀' * 1000)"` });
    assert.equal(r.exitCode, 0);
    const lines = r.stdout.split('\n');
    const marker = lines.findIndex((l) => /truncated/i.test(l));
    assert.ok(marker >= 0, r.stdout.slice(0, 200));
    const kept = lines.slice(marker + 1).join('\n');
    assert.ok(!kept.includes('\ufffd'), 'a character was split');
    assert.ok(/^é+😀{1000}\n$/u.test(kept), `kept: ${kept.slice(0, 40)}...${kept.slice(-40)}`);
    const keptChars = [...kept].length;
    assert.ok(keptChars >= OUTPUT_TRUNCATE - 2 && keptChars <= OUTPUT_TRUNCATE,
      `kept ${keptChars} characters`);
    const numbers = (lines[marker].match(/\d+/g) ?? []).map(Number);
    assert.ok(numbers.includes(10001 - keptChars),
      `marker "${lines[marker]}" should say ${10001 - keptChars} characters were cut`);
  });

  test('output that is not valid UTF-8 or holds NUL bytes still makes a valid result', async () => {
    const r = await srv().spawn({ command: "printf 'a\\377\\376b\\000c\\n'" });
    assert.equal(r.exitCode, 0);
    assert.ok(r.stdout.startsWith('a'), JSON.stringify(r.stdout));
    assert.ok(r.stdout.endsWith('c\n'), JSON.stringify(r.stdout));
    assert.ok(r.stdout.includes('b'), JSON.stringify(r.stdout));
    assert.deepEqual(await srv().client.ping(), {});
  });
});

describe('process setup', () => {
  const srv = useServer({ before, after });

  test('each command runs in its own session and process group', async () => {
    const parse = (text) => Object.fromEntries(text.trim().split(/\s+/)
      .reduce((pairs, word, i, words) => (i % 2 ? pairs : [...pairs, [word, Number(words[i + 1])]]),
        []));
    for (const tty of [false, true]) {
      const r = await srv().spawn({ command: `exec ${child()} pgid`, tty });
      assert.equal(r.exitCode, 0);
      const ids = parse(r.stdout);
      assert.ok(ids.pid > 0, r.stdout);
      assert.equal(ids.pgid, ids.pid, `tty ${tty}: not a process group leader: ${r.stdout}`);
      assert.equal(ids.sid, ids.pid, `tty ${tty}: not a session leader: ${r.stdout}`);
      assert.notEqual(ids.pgid, process.pid);
    }
  });

  test('a child inherits no file descriptors besides stdin, stdout and stderr', async () => {
    for (const tty of [false, true]) {
      const r = await srv().spawn({ command: `exec ${child()} fds`, tty });
      assert.equal(r.exitCode, 0);
      const fds = r.stdout.trim().split(/\s+/).map(Number).sort((a, b) => a - b);
      assert.deepEqual(fds, [0, 1, 2], `tty ${tty}: open descriptors ${fds}`);
    }
  });

  test('many background processes are listed and can all be killed', async () => {
    const ids = [];
    for (let i = 0; i < 30; i++) {
      ids.push((await srv().spawn({ command: `sleep 60; echo ${i}`, background: true })).pid);
    }
    const listed = (await srv().ps()).filter((p) => ids.includes(p.pid));
    assert.equal(listed.length, ids.length);
    assert.ok(listed.every((p) => p.status === 'running'));
    const kills = await Promise.all(ids.map((id) => srv().kill(id, 'SIGKILL')));
    if (EXECUTOR === 'host') {
      assert.ok(kills.every((k) => k.status === 'terminated'), JSON.stringify(kills));
    } else {
      // Each signal to a container is an engine round trip; kill reports what it saw within
      // its short wait, and the rest must follow promptly.
      await until(async () => (await srv().ps()).filter((p) => ids.includes(p.pid))
        .every((p) => p.status === 'terminated'), 10000, 'every process to be terminated');
    }
  });
});

describe('ps and stdout', () => {
  const srv = useServer({ before, after });

  test('ps lists running and terminated processes with their details', async () => {
    const startedAt = Date.now();
    const done = await srv().spawn({ command: 'exit 2' });
    const running = await srv().spawn({ command: 'sleep 30', background: true });
    const ttyRunning = await srv().spawn({ command: 'sleep 31', background: true, tty: true });
    try {
      const processes = await srv().ps();
      const byId = Object.fromEntries(processes.map((p) => [p.pid, p]));
      for (const p of processes) {
        assert.match(p.pid, ID);
        assert.equal(typeof p.command, 'string');
        assert.ok(['running', 'terminated'].includes(p.status), p.status);
        assert.equal(typeof p.cwd, 'string');
        assert.equal(typeof p.tty, 'boolean');
        assert.match(p.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
      }
      const ended = byId[done.pid];
      assert.ok(ended, `${done.pid} not listed`);
      assert.equal(ended.command, 'exit 2');
      assert.equal(ended.status, 'terminated');
      assert.equal(ended.exitCode, 2);
      assert.ok(ended.signal === undefined || ended.signal === null, `signal ${ended.signal}`);
      assert.equal(ended.cwd, srv().work);
      assert.equal(ended.tty, false);
      assert.equal(byId[running.pid].status, 'running');
      assert.equal(byId[running.pid].exitCode, null);
      assert.equal(byId[running.pid].tty, false);
      assert.equal(byId[running.pid].command, 'sleep 30');
      assert.equal(byId[ttyRunning.pid].tty, true);
      const created = Date.parse(byId[running.pid].createdAt);
      assert.ok(created >= startedAt - 2000 && created <= Date.now() + 2000,
        `createdAt ${byId[running.pid].createdAt} is not now`);
    } finally {
      await srv().kill(running.pid, 'SIGKILL');
      await srv().kill(ttyRunning.pid, 'SIGKILL');
    }
  });

  test('stdout returns the last N lines, 100 by default', async () => {
    const r = await srv().spawn({ command: 'seq 1 500; echo e1 >&2; echo e2 >&2; echo e3 >&2' });
    assert.equal(r.exitCode, 0);
    const five = await srv().stdout(r.pid, 5);
    assert.equal(five.id, r.pid);
    assert.equal(five.status, 'terminated');
    assert.equal(five.exitCode, 0);
    assert.deepEqual(five.stdout.replace(/\n$/, '').split('\n'), ['496', '497', '498', '499', '500']);
    assert.deepEqual(five.stderr.replace(/\n$/, '').split('\n'), ['e1', 'e2', 'e3']);
    const two = await srv().stdout(r.pid, 2);
    assert.deepEqual(two.stderr.replace(/\n$/, '').split('\n'), ['e2', 'e3']);
    const unterminated = await srv().spawn({ command: "printf 'a\\nb\\nc'" });
    assert.equal(unterminated.stdout, 'a\nb\nc');
    assert.equal((await srv().stdout(unterminated.pid, 2)).stdout, 'b\nc');
    const dflt = await srv().stdout(r.pid);
    const lines = dflt.stdout.replace(/\n$/, '').split('\n');
    assert.equal(lines.length, 100);
    assert.equal(lines[0], '401');
    assert.equal(lines.at(-1), '500');
  });

  test('stdout of a running process shows what it has written so far', async () => {
    const r = await srv().spawn({ command: 'echo first; sleep 30', background: true });
    try {
      const out = await srv().waitOutput(r.pid, 'first');
      assert.equal(out.status, 'running');
      assert.equal(out.exitCode, null);
      assert.equal(out.stdout, 'first\n');
    } finally {
      await srv().kill(r.pid, 'SIGKILL');
    }
  });
});

describe('the server environment does not leak into children', () => {
  let server;
  before(async () => {
    server = await McpServer.start({ env: { PMCP_SECRET_TEST: '1' } });
  });
  after(async () => server?.close());

  test('a variable of the server environment is not visible, PATH is', async () => {
    const r = await server.spawn({
      command: 'echo "secret=${PMCP_SECRET_TEST-unset}"; command -v sh >/dev/null && echo has-path',
    });
    assert.equal(r.stdout, 'secret=unset\nhas-path\n');
  });

  test('a variable given in env is visible even if the server has it too', async () => {
    const r = await server.spawn({ command: 'echo "$PMCP_SECRET_TEST"',
      env: { PMCP_SECRET_TEST: 'given' } });
    assert.equal(r.stdout, 'given\n');
  });
});

describe('waiting without blocking', () => {
  const srv = useServer({ before, after });

  test('a foreground spawn with a progressToken gets progress notifications', async () => {
    const progress = [];
    const started = Date.now();
    const r = await srv().spawn({ command: 'sleep 3', timeoutMs: 10000 },
      { onprogress: (p) => progress.push({ ...p, at: Date.now() - started }) });
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, 0);
    assert.ok(progress.length >= 1, 'no notifications/progress received');
    for (const p of progress) assert.equal(typeof p.progress, 'number');
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i].progress > progress[i - 1].progress,
        `progress must increase: ${JSON.stringify(progress)}`);
    }
  });

  test('ping and ps answer quickly while a foreground spawn is waiting', async () => {
    const marker = `sleep 5.${process.pid % 1000}1`;
    let settled = false;
    const pending = srv().spawn({ command: marker, timeoutMs: 10000 });
    pending.then(() => { settled = true; }, () => { settled = true; });
    try {
      await until(async () => (await srv().ps()).some((p) => p.command === marker &&
        p.status === 'running'), 5000, 'the foreground spawn to appear in ps');
      for (let i = 0; i < 3; i++) {
        let t = Date.now();
        await srv().client.ping();
        assert.ok(Date.now() - t < 1000, `ping took ${Date.now() - t} ms`);
        t = Date.now();
        await srv().ps();
        assert.ok(Date.now() - t < 1000, `ps took ${Date.now() - t} ms`);
      }
      // Another foreground spawn completes while the first still waits.
      const t = Date.now();
      const quick = await srv().spawn({ command: 'echo meanwhile' });
      assert.equal(quick.stdout, 'meanwhile\n');
      assert.ok(Date.now() - t < 2000, `a quick spawn took ${Date.now() - t} ms`);
      assert.equal(settled, false, 'the checks did not run while the spawn waited');
    } finally {
      const r = await pending;
      assert.equal(r.status, 'terminated');
      assert.equal(r.exitCode, 0);
    }
  });

  test('a cancelled foreground spawn leaves its process running', async () => {
    const marker = `sleep 40.${process.pid % 1000}2`;
    const controller = new AbortController();
    const pending = srv().client.callTool(
      { name: 'spawn', arguments: { command: `echo cancel-me; ${marker}`, timeoutMs: 30000 } },
      undefined, { signal: controller.signal });
    const entry = await until(async () => (await srv().ps()).find((p) =>
      p.command.includes(marker) && p.status === 'running'), 5000, 'the spawn to appear in ps');
    try {
      const t = Date.now();
      controller.abort('user cancelled');
      await assert.rejects(pending);
      // ping is answered after the server saw notifications/cancelled.
      await srv().client.ping();
      assert.ok(Date.now() - t < 1000);
      const entryAfter = await srv().psEntry(entry.pid);
      assert.equal(entryAfter.status, 'running');
      const out = await srv().waitOutput(entry.pid, 'cancel-me');
      assert.equal(out.status, 'running');
    } finally {
      await srv().kill(entry.pid, 'SIGKILL');
    }
  });
});
