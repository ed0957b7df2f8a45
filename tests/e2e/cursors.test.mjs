// stdout, extended (docs/agent-tools.md): reading with cursors (since, next, dropped, maxBytes,
// stream), grep with absolute line numbers, the screen view with the cursor, and ANSI escapes
// removed from pipe output unless keepAnsi.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, firstDifference, spamText, waitExit, waitFor } from './lib/agent.mjs';
import { child, useServer } from './lib/server.mjs';

const MiB = 1048576;
const TOTAL = 50000000;

// Follows `next` on stdout from offset 0 until the process has exited and everything is read.
// Calls onChunk({since, dropped, text, next}) for every non-empty read. Waits with `wait`
// (never a sleep) when the reader has caught up with a running writer.
async function follow(server, id, onChunk) {
  let since = { stdout: 0 };
  let calls = 0;
  for (;;) {
    const r = await server.tool('stdout', { id, since, maxBytes: MiB, stream: 'stdout' });
    calls += 1;
    assert.equal(typeof r.next?.stdout, 'number', `no next.stdout in ${JSON.stringify(r.next)}`);
    assert.equal(typeof r.dropped?.stdout, 'number', `no dropped.stdout: ${JSON.stringify(r)}`);
    assert.ok(r.stdout.length <= MiB, `read ${r.stdout.length} bytes with maxBytes ${MiB}`);
    const chunk = { since: since.stdout, dropped: r.dropped.stdout, text: r.stdout,
      next: r.next.stdout };
    assert.equal(chunk.next, chunk.since + chunk.dropped + chunk.text.length,
      `next after reading ${chunk.text.length} bytes from ${chunk.since} ` +
      `(dropped ${chunk.dropped})`);
    if (chunk.text.length > 0 || chunk.dropped > 0) onChunk(chunk);
    since = { stdout: r.next.stdout };
    if (chunk.text.length > 0) continue;
    if (r.status === 'terminated') {
      // Exited and caught up: one more read proves nothing is left.
      const last = await server.tool('stdout', { id, since, maxBytes: MiB, stream: 'stdout' });
      assert.equal(last.stdout, '');
      assert.equal(last.next.stdout, since.stdout);
      return { calls, end: since.stdout };
    }
    const w = await server.tool('wait', {
      id, since, stream: 'stdout', until: { pattern: '[\\s\\S]', exit: true }, timeoutMs: 20000,
    });
    assert.notEqual(w.status, 'timeout', 'the writer stalled');
  }
}

describe('cursors with a buffer larger than the output', () => {
  const srv = useServer({ before, after },
    { config: { limits: { output_buffer_bytes: 64 * MiB } } });

  test('following next reads every byte of a 50 MB output exactly once', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} spam ${TOTAL}`,
      background: true });
    try {
      let expectedOffset = 0;
      const { end } = await follow(srv(), pid, (chunk) => {
        assert.equal(chunk.dropped, 0, `dropped ${chunk.dropped} bytes at ${chunk.since}`);
        assert.equal(chunk.since, expectedOffset);
        const expected = spamText(chunk.since, chunk.text.length);
        if (chunk.text !== expected) {
          const at = firstDifference(chunk.text, expected);
          assert.fail(`bytes differ at offset ${chunk.since + at}: got ` +
            `${JSON.stringify(chunk.text.slice(at, at + 40))}, expected ` +
            `${JSON.stringify(expected.slice(at, at + 40))}`);
        }
        expectedOffset = chunk.next;
      });
      assert.equal(end, TOTAL);
      assert.equal(expectedOffset, TOTAL);
      const done = await waitExit(srv(), pid);
      assert.equal(done.exitCode, 0);
    } finally {
      await cleanup(srv(), pid);
    }
  });
});

describe('cursors', () => {
  const srv = useServer({ before, after });

  test('with the default buffer, what is read plus what was dropped is the whole output, ' +
    'and every section read is the right bytes', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} spam ${TOTAL}`,
      background: true });
    try {
      let read = 0;
      let dropped = 0;
      const { end } = await follow(srv(), pid, (chunk) => {
        const start = chunk.since + chunk.dropped;
        if (chunk.text !== spamText(start, chunk.text.length)) {
          const expected = spamText(start, chunk.text.length);
          const at = firstDifference(chunk.text, expected);
          assert.fail(`section at ${start} (since ${chunk.since}, dropped ${chunk.dropped}) ` +
            `differs at offset ${start + at}`);
        }
        read += chunk.text.length;
        dropped += chunk.dropped;
      });
      assert.equal(end, TOTAL);
      assert.equal(read + dropped, TOTAL);
      assert.ok(read >= MiB, `only ${read} bytes read`);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('reading from 0 after the buffer wrapped: dropped is exact, the tail is intact',
    async () => {
      const total = 5000000;
      const { pid } = await srv().spawn({ command: `exec ${child()} spam ${total}`,
        background: true });
      await waitExit(srv(), pid);
      const r = await srv().tool('stdout', { id: pid, since: { stdout: 0 }, maxBytes: 2 * MiB });
      assert.deepEqual(r.dropped, { stdout: total - MiB, stderr: 0 });
      assert.deepEqual(r.next, { stdout: total, stderr: 0 });
      assert.equal(r.stdout.length, MiB);
      assert.ok(r.stdout === spamText(total - MiB, MiB), 'the retained tail is not the last MiB');
      assert.equal(r.stderr, '');
    });

  test('maxBytes defaults to 65536 per stream; next continues exactly', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} spam 200000` });
    await waitExit(srv(), pid);
    const a = await srv().tool('stdout', { id: pid, since: { stdout: 0, stderr: 0 } });
    assert.equal(a.stdout, spamText(0, 65536));
    assert.deepEqual(a.next, { stdout: 65536, stderr: 0 });
    assert.deepEqual(a.dropped, { stdout: 0, stderr: 0 });
    const b = await srv().tool('stdout', { id: pid, since: a.next, maxBytes: 100000 });
    assert.equal(b.stdout, spamText(65536, 100000));
    assert.deepEqual(b.next, { stdout: 165536, stderr: 0 });
    const c = await srv().tool('stdout', { id: pid, since: b.next });
    assert.equal(c.stdout, spamText(165536, 34464));
    assert.deepEqual(c.next, { stdout: 200000, stderr: 0 });
    const d = await srv().tool('stdout', { id: pid, since: c.next });
    assert.equal(d.stdout, '');
    assert.deepEqual(d.next, { stdout: 200000, stderr: 0 });
    assert.deepEqual(d.dropped, { stdout: 0, stderr: 0 });
  });

  test('one cursor per stream; missing members start at the beginning; stream selects',
    async () => {
      const { pid } = await srv().spawn({ command: 'echo out1; echo err1 >&2; echo out2' });
      await waitExit(srv(), pid);
      const all = await srv().tool('stdout', { id: pid, since: {} });
      assert.equal(all.stdout, 'out1\nout2\n');
      assert.equal(all.stderr, 'err1\n');
      assert.deepEqual(all.next, { stdout: 10, stderr: 5 });
      assert.deepEqual(all.dropped, { stdout: 0, stderr: 0 });
      const half = await srv().tool('stdout', { id: pid, since: { stdout: 5 } });
      assert.equal(half.stdout, 'out2\n');
      assert.equal(half.stderr, 'err1\n');
      const onlyErr = await srv().tool('stdout', { id: pid, since: {}, stream: 'stderr' });
      assert.equal(onlyErr.stderr, 'err1\n');
      assert.equal(onlyErr.stdout ?? '', '');
      assert.equal(onlyErr.next.stderr, 5);
      const onlyOut = await srv().tool('stdout', { id: pid, since: {}, stream: 'stdout' });
      assert.equal(onlyOut.stdout, 'out1\nout2\n');
      assert.equal(onlyOut.stderr ?? '', '');
      assert.equal(onlyOut.next.stdout, 10);
    });

  test('a terminal process has one stream: cursor {terminal: N}', async () => {
    const { pid } = await srv().spawn({ command: 'echo hi; exec sleep 30', tty: true,
      background: true });
    try {
      await waitFor(srv(), pid, { pattern: '^hi$' }, { timeoutMs: 10000 });
      const r = await srv().tool('stdout', { id: pid, since: { terminal: 0 } });
      assert.deepEqual(r.next, { terminal: 4 });
      assert.deepEqual(r.dropped, { terminal: 0 });
      assert.equal(r.stdout.replaceAll('\r', ''), 'hi\n');
      const none = await srv().tool('stdout', { id: pid, since: r.next });
      assert.equal(none.stdout, '');
      assert.deepEqual(none.next, { terminal: 4 });
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a following reader gets output as it arrives, never twice', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} cat`, background: true });
    try {
      let since = { stdout: 0, stderr: 0 };
      let seen = '';
      for (const word of ['alpha', 'beta', 'gamma']) {
        await srv().tool('stdin', { id: pid, input: `${word}\\n` });
        const w = await waitFor(srv(), pid, { pattern: `^${word}$` }, { since, timeoutMs: 10000 });
        assert.equal(w.status, 'matched');
        const r = await srv().tool('stdout', { id: pid, since });
        seen += r.stdout;
        since = r.next;
      }
      assert.equal(seen, 'alpha\nbeta\ngamma\n');
      assert.deepEqual(since, { stdout: 17, stderr: 0 });
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a bad cursor is an error', async () => {
    const { pid } = await srv().spawn({ command: 'echo x' });
    await srv().toolError('stdout', { id: pid, since: { stdout: -1 } });
    await srv().toolError('stdout', { id: pid, since: { stdout: 'zero' } });
    await srv().toolError('stdout', { id: pid, since: 5 });
    await srv().toolError('stdout', { id: pid, since: {}, stream: 'sideways' });
  });
});

describe('grep', () => {
  const srv = useServer({ before, after });

  test('matching lines with absolute numbers', async () => {
    const { pid } = await srv().spawn({ command: 'seq 1 1000' });
    await waitExit(srv(), pid);
    const r = await srv().tool('stdout', { id: pid, grep: '^500$', context: 1 });
    assert.equal(r.matches.length, 1, JSON.stringify(r.matches));
    const [m] = r.matches;
    assert.equal(m.stream, 'stdout');
    assert.equal(m.line, 500);
    assert.equal(m.text, '500');

    const many = await srv().tool('stdout', { id: pid, grep: '^50\\d$' });
    assert.deepEqual(many.matches.map((x) => [x.line, x.text]),
      Array.from({ length: 10 }, (_, i) => [500 + i, String(500 + i)]));
    const none = await srv().tool('stdout', { id: pid, grep: '^1001$' });
    assert.deepEqual(none.matches, []);
  });

  test('line numbers stay absolute after the buffer dropped the start', async () => {
    const { pid } = await srv().spawn({ command: 'seq 1 300000', timeoutMs: 30000 });
    await waitExit(srv(), pid);
    const r = await srv().tool('stdout', { id: pid, grep: '^(1|299999)$' });
    assert.deepEqual(r.matches.map((m) => [m.stream, m.line, m.text]),
      [['stdout', 299999, '299999']]);
  });

  test('both streams, ignoreCase, and a bad pattern', async () => {
    const { pid } = await srv().spawn({
      command: 'echo first; echo Match-out; echo x >&2; echo match-ERR >&2',
    });
    await waitExit(srv(), pid);
    const r = await srv().tool('stdout', { id: pid, grep: 'match-', ignoreCase: true });
    const found = r.matches.map((m) => [m.stream, m.line, m.text]).sort();
    assert.deepEqual(found, [['stderr', 2, 'match-ERR'], ['stdout', 2, 'Match-out']]);
    const cs = await srv().tool('stdout', { id: pid, grep: 'match-' });
    assert.deepEqual(cs.matches.map((m) => m.text), ['match-ERR']);
    const onlyOut = await srv().tool('stdout', { id: pid, grep: 'match-', ignoreCase: true,
      stream: 'stdout' });
    assert.deepEqual(onlyOut.matches.map((m) => m.text), ['Match-out']);
    assert.match(await srv().toolError('stdout', { id: pid, grep: 'a(b' }), /position \d+/);
  });
});

describe('screen view and escape sequences', () => {
  const srv = useServer({ before, after });

  test('view "screen" returns the screen and the cursor', async () => {
    const { pid } = await srv().spawn({
      command: "printf 'one\\ntwo\\nabc'; exec sleep 30", tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: 'abc' }, { timeoutMs: 10000 });
      const r = await srv().tool('stdout', { id: pid, view: 'screen' });
      assert.deepEqual(r.cursor, { row: 2, col: 3 });
      const lines = r.stdout.split('\n').map((line) => line.trimEnd());
      assert.deepEqual(lines.slice(0, 3), ['one', 'two', 'abc']);
      assert.ok(lines.slice(3).every((line) => line === ''), JSON.stringify(lines));
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('view "screen" holds only the last screenful; scrollback holds more', async () => {
    const { pid } = await srv().spawn({ command: 'seq 1 100; exec sleep 30', tty: true,
      background: true });
    try {
      await waitFor(srv(), pid, { pattern: '^100$' }, { timeoutMs: 10000 });
      const screen = await srv().tool('stdout', { id: pid, view: 'screen' });
      const shown = screen.stdout.split('\n').map((line) => line.trimEnd())
        .filter((line) => line !== '');
      assert.deepEqual(shown, Array.from({ length: 29 }, (_, i) => String(72 + i)));
      assert.deepEqual(screen.cursor, { row: 29, col: 0 });
      const scrollback = await srv().tool('stdout', { id: pid, view: 'scrollback', lines: 50 });
      const all = scrollback.stdout.split('\n').map((line) => line.trimEnd())
        .filter((line) => line !== '');
      assert.ok(all.includes('60'), 'scrollback lacks line 60');
      assert.equal(all.at(-1), '100');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('escape sequences are removed from pipe output unless keepAnsi', async () => {
    const { pid } = await srv().spawn({
      command: "printf '\\033[31mred\\033[0m\\n'; printf '\\033]0;title\\007plain\\n'; " +
        "printf '\\033[1mbold\\033[0m\\n' >&2",
    });
    await waitExit(srv(), pid);
    const plain = await srv().stdout(pid);
    assert.equal(plain.stdout, 'red\nplain\n');
    assert.equal(plain.stderr, 'bold\n');
    const raw = await srv().tool('stdout', { id: pid, keepAnsi: true });
    assert.equal(raw.stdout, '\x1b[31mred\x1b[0m\n\x1b]0;title\x07plain\n');
    assert.equal(raw.stderr, '\x1b[1mbold\x1b[0m\n');
    // Cursors count raw bytes either way.
    const since = await srv().tool('stdout', { id: pid, since: { stdout: 0, stderr: 0 } });
    assert.equal(since.stdout, 'red\nplain\n');
    assert.deepEqual(since.next, { stdout: 29, stderr: 13 });
    const sinceRaw = await srv().tool('stdout', { id: pid, since: { stdout: 0 }, keepAnsi: true,
      stream: 'stdout' });
    assert.equal(sinceRaw.stdout, '\x1b[31mred\x1b[0m\n\x1b]0;title\x07plain\n');
    // A pattern matches the text without the escapes.
    const w = await waitFor(srv(), pid, { pattern: '^red$' }, { timeoutMs: 10000 });
    assert.equal(w.status, 'matched');
    assert.equal(w.match.text, 'red');
  });
});
