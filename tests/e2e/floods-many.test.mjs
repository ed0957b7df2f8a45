// Floods: many children (1,000 with the host executor) writing at once, with the server started
// under the soft limit of open files that most systems give a process (1024). The server keeps
// answering ping, its memory stays within what its configured output buffers allow, the tail
// of every child's output can be read, kill ends them all and no process is left behind.
// Generous bounds (the machine is shared); `pmcp-bench-floods` reports the real figures.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { checkMemory, noneLeft, startServer, statusKb, watch } from './lib/floods.mjs';
import { DOCKER, EXECUTOR, e2eContainer, sleep, uniqueSleep, until } from './lib/server.mjs';

describe('many children writing at once', () => {
  // Small buffers, so that what the children write (COUNT x 2 x PER_STREAM) is several times
  // what the server may keep. Docker starts each exec through the engine: fewer there.
  const COUNT = EXECUTOR === 'docker' ? 100 : 1000;
  const PER_STREAM = 320 * 1024;
  const bufferBytes = 64 * 1024;
  let server;
  let watcher;
  before(async () => {
    // 1024: the usual soft limit of open files; the server needs about 4 per live process.
    server = await startServer(bufferBytes, { max_processes: COUNT }, { maxOpenFiles: 1024 });
  });
  after(async () => {
    await watcher?.stop();
    await server?.close();
  });

  test(`${COUNT} children: ping answers, memory stays bounded, the tails are kept, kill ends ` +
    'them all', async (t) => {
    const duration = uniqueSleep('900.');
    // Every child blocks on one newline from a FIFO, then writes to both streams and sleeps.
    // The test holds the FIFO open for writing, so a child that opens it late still waits.
    const fifo = path.join(server.work, 'go');
    execFileSync('mkfifo', [fifo]);
    const go = openSync(fifo, 'r+');
    const baselineKb = statusKb(server.pid, 'VmRSS');
    // 2 s, not 1: with 1,000 writers woken as the server drains their pipes, on a shared
    // 2-core machine, the scheduler alone has delayed a ping by more than a second (load
    // average 18). A server that stops answering still fails this; pmcp-bench-floods reports
    // the real latency.
    watcher = watch(server, { maxPingMs: 2000 });
    const ids = [];
    try {
      const started = Date.now();
      const inFlight = 32;
      let next = 0;
      const worker = async () => {
        while (next < COUNT) {
          const n = next++;
          const { pid } = await server.spawn({
            command: `read -r x < go; yes out-${n} | head -c ${PER_STREAM}; ` +
              `yes err-${n} | head -c ${PER_STREAM} >&2; exec sleep ${duration}`,
            background: true,
          }, { timeout: 30000 });
          ids[n] = pid;
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      t.diagnostic(`${COUNT} spawns in ${Date.now() - started} ms`);
      const flood = Date.now();
      writeSync(go, '\n'.repeat(COUNT));
      // Every child has written all its output once the total count says so.
      await until(async (seen) => {
        const list = await server.ps();
        const mine = list.filter((p) => ids.includes(p.pid));
        seen(`${mine.length} listed`);
        if (mine.length !== COUNT) return false;
        const outs = await Promise.all(ids.filter((_, i) => i % 50 === 0).map((id) =>
          // A cursor past the end reads nothing and returns the end: the byte count.
          server.tool('stdout', { id, since: { stdout: 1e12, stderr: 1e12 }, maxBytes: 1 })));
        seen(outs.map((o) => `${o.next.stdout}/${o.next.stderr}`).join(' '));
        return outs.every((o) => o.next.stdout === PER_STREAM && o.next.stderr === PER_STREAM);
      }, 60000, 'the sampled children to write all their output', 500);
      // Then every child, once its byte counts say it has written everything (the sampled
      // ones are not the last to finish; through the docker engine, each exec's output stream
      // lags on its own): its last lines are there on both streams.
      const tails = [];
      const deadline = Date.now() + 60000;
      let i = 0;
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (i < COUNT) {
          const n = i++;
          let done = false;
          while (!done && Date.now() < deadline) {
            const end = await server.tool('stdout',
              { id: ids[n], since: { stdout: 1e12, stderr: 1e12 }, maxBytes: 1 });
            done = end.next.stdout === PER_STREAM && end.next.stderr === PER_STREAM;
            if (!done) await sleep(200);  // pacing between polls of one child
          }
          // Two lines: head cut the last one short.
          const out = await server.tool('stdout', { id: ids[n], lines: 2 });
          tails[n] = done && out.stdout.includes(`out-${n}`) && out.stderr.includes(`err-${n}`);
        }
      }));
      const missing = tails.map((ok, n) => ok ? null : n).filter((n) => n !== null);
      assert.deepEqual(missing.slice(0, 20), [], 'children whose tail is missing');
      t.diagnostic(`flood and reading every tail: ${Date.now() - flood} ms`);
    } finally {
      closeSync(go);
    }
    const seen = await watcher.stop();
    t.diagnostic(seen.summary);
    const memory = checkMemory(t, server, baselineKb, { processes: COUNT, bufferBytes });
    t.diagnostic(`peak RSS ${(memory.peakKb / 1024).toFixed(1)} MiB, bound ` +
      `${(memory.boundKb / 1024).toFixed(1)} MiB`);
    assert.deepEqual(seen.problems, [], seen.summary);
    // Kill them all, then nothing of them is left.
    const killedAt = Date.now();
    let k = 0;
    const statuses = [];
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (k < ids.length) {
        const n = k++;
        statuses[n] = (await server.tool('kill', { id: ids[n], signal: 'SIGKILL' },
          { timeout: 30000 })).status;
      }
    }));
    t.diagnostic(`${COUNT} kills in ${Date.now() - killedAt} ms`);
    await until(async () => (await server.ps()).every((p) => p.status === 'terminated'),
      30000, 'every child to be terminated');
    await noneLeft(`sleep ${duration}`);
  });

  // The host executor raises its own soft limit and gives commands the original back. A docker
  // command gets the container's limit, which the engine sets, whatever the server's.
  test('commands start with the soft limit of open files that the server was given', async () => {
    const r = await server.spawn({ command: 'ulimit -Sn' });
    const expected = EXECUTOR === 'docker' ?
      execFileSync(DOCKER, ['exec', e2eContainer().name, 'sh', '-c', 'ulimit -Sn'],
        { encoding: 'utf8' }) :
      '1024\n';
    assert.equal(r.stdout, expected);
  });
});
