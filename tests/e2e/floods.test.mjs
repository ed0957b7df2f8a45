// Floods: a child that writes 1 GiB as fast as it can, and a child that writes one 100 MiB line
// with no newline (floods-many.test.mjs: many children at once). In each case the server keeps
// answering ping, its memory stays within what its configured output buffers allow, the tail of
// the output can still be read, kill works, and no process is left behind.
//
// These are the quick versions with generous bounds (the machine is shared): the real ping
// latency against the 100 ms target is what `pmcp-bench-floods` reports.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  MiB, checkMemory, noneLeft, startServer, statusKb, watch,
} from './lib/floods.mjs';
import { EXECUTOR, SANITIZER, sleep, uniqueSleep } from './lib/server.mjs';

describe('a child writing 1 GiB as fast as it can', () => {
  const bufferBytes = MiB;
  let server;
  let watcher;
  before(async () => {
    server = await startServer(bufferBytes);
  });
  after(async () => {
    await watcher?.stop();
    await server?.close();
  });

  test('the server keeps answering, stays bounded, counts every byte and keeps the tail',
    async (t) => {
      const marker = `flood-${uniqueSleep('')}`;
      // A TSan build read about 13 MB/s: a quarter as much under a sanitizer, still 256 times
      // the buffer.
      const total = (SANITIZER ? 256 : 1024) * MiB;
      t.diagnostic(`${total / MiB} MiB`);
      const baselineKb = statusKb(server.pid, 'VmRSS');
      watcher = watch(server);
      const { pid } = await server.spawn({
        command: `yes ${marker} | head -c ${total}`, background: true,
      });
      // The tail can be read while the flood runs.
      await server.waitOutput(pid, marker, 10000, 2);
      const ended = await server.tool('wait',
        { id: pid, until: { exit: true }, timeoutMs: 60000 }, { timeout: 65000 });
      const seen = await watcher.stop();
      t.diagnostic(seen.summary);
      assert.equal(ended.status, 'exited', JSON.stringify(ended));
      assert.equal(ended.exitCode, 0);
      assert.equal(ended.next.stdout, total, 'the server counted every byte');
      const out = await server.tool('stdout', { id: pid, lines: 3 });
      assert.match(out.stdout, new RegExp(`${marker}\\n${marker}\\n`));
      assert.ok(out.stdout.length < 3 * (marker.length + 1) + 1, out.stdout);
      const read = await server.tool('stdout', { id: pid, since: { stdout: 0 }, maxBytes: 64 });
      assert.equal(read.dropped.stdout, total - bufferBytes, 'the buffer keeps the last MiB');
      const memory = checkMemory(t, server, baselineKb, { processes: 1, bufferBytes });
      t.diagnostic(`peak RSS ${(memory.peakKb / 1024).toFixed(1)} MiB, bound ` +
        `${(memory.boundKb / 1024).toFixed(1)} MiB`);
      assert.deepEqual(seen.problems, [], seen.summary);
      await noneLeft(marker);
    });

  test('a flood that never ends is killed at once', async () => {
    const marker = `endless-${uniqueSleep('')}`;
    const { pid } = await server.spawn({ command: `yes ${marker}`, background: true });
    await server.waitOutput(pid, marker, 10000, 2);
    await sleep(1000);  // let it flood for a while
    const killed = await server.tool('kill', { id: pid, signal: 'SIGKILL' }, { timeout: 5000 });
    if (EXECUTOR === 'host') assert.equal(killed.status, 'terminated');
    await server.waitExit(pid, 20000);
    await noneLeft(marker);
  });
});

describe('a child writing one 100 MiB line with no newline', () => {
  const bufferBytes = MiB;
  let server;
  let watcher;
  before(async () => {
    server = await startServer(bufferBytes);
  });
  after(async () => {
    await watcher?.stop();
    await server?.close();
  });

  test('the server keeps answering, stays bounded and returns a bounded tail', async (t) => {
    const total = 100 * MiB;
    const duration = uniqueSleep('600.');
    const baselineKb = statusKb(server.pid, 'VmRSS');
    watcher = watch(server);
    // `tr` turns the zeros into one line of 'a'; then the child stays, to be killed.
    const { pid } = await server.spawn({
      command: `head -c ${total} /dev/zero | tr '\\0' a; exec sleep ${duration}`,
      background: true,
    });
    // A pattern that never matches makes the server scan the whole line as it arrives.
    const waited = await server.tool('wait',
      { id: pid, until: { pattern: 'b', idleMs: 2000 }, timeoutMs: 60000 }, { timeout: 65000 });
    assert.equal(waited.status, 'idle', JSON.stringify(waited));
    assert.equal(waited.next.stdout, total, 'the server counted every byte');
    // A pattern that matches the line answers with a bounded match, not the whole line.
    const matched = await server.tool('wait',
      { id: pid, until: { pattern: 'a+' }, since: { stdout: 0 }, timeoutMs: 5000 });
    assert.equal(matched.status, 'matched', JSON.stringify(matched).slice(0, 300));
    const truncate = 8196;  // [defaults] output_truncate
    assert.ok(matched.match.text.length <= truncate,
      `match text of ${matched.match.text.length} characters`);
    assert.ok(matched.match.context.length <= 2 * truncate,
      `match context of ${matched.match.context.length} characters`);
    const out = await server.tool('stdout', { id: pid, lines: 1 });
    assert.match(out.stdout, /a{1000}$/);
    assert.ok(out.stdout.length <= 8 * truncate + 200,
      `stdout returned ${out.stdout.length} characters of one line`);
    const grep = await server.tool('stdout', { id: pid, grep: 'a$' });
    assert.equal(grep.matches.length, 1);
    assert.ok(grep.matches[0].text.length <= truncate,
      `grep returned a line of ${grep.matches[0].text.length} characters`);
    const seen = await watcher.stop();
    t.diagnostic(seen.summary);
    const memory = checkMemory(t, server, baselineKb, { processes: 1, bufferBytes });
    t.diagnostic(`peak RSS ${(memory.peakKb / 1024).toFixed(1)} MiB, bound ` +
      `${(memory.boundKb / 1024).toFixed(1)} MiB`);
    assert.deepEqual(seen.problems, [], seen.summary);
    const killed = await server.tool('kill', { id: pid, signal: 'SIGKILL' }, { timeout: 5000 });
    if (EXECUTOR === 'host') assert.equal(killed.status, 'terminated');
    await server.waitExit(pid, 20000);
    await noneLeft(`sleep ${duration}`);
  });
});
