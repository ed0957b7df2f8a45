// Under load: a child that writes as fast as it can (on pipes or on a terminal) must not make
// the server slow to answer, slow to kill it, or grow without bound.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { EXECUTOR, McpServer, memoryBoundsApply, sleep } from './lib/server.mjs';

const FLOOD_MS = 4000;
const MAX_LATENCY_MS = 1000;
const MAX_RSS_GROWTH_MB = 64;

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]) / 1024;
}

for (const tty of [false, true]) {
  const kind = tty ? 'terminal' : 'pipe';
  describe(`a ${kind} process flooding output`, () => {
    let server;
    before(async () => {
      server = await McpServer.start();
    });
    after(async () => server?.close());

    test('leaves the server responsive, bounded in memory, and able to kill it', async (t) => {
      // Short request timeouts: a server that falls behind fails fast instead of hanging.
      const quick = { timeout: 5000 };
      const { pid } = await server.spawn({ command: 'yes flood-line', background: true, tty });
      const problems = [];
      const timed = async (what, fn, limitMs = MAX_LATENCY_MS) => {
        const begun = Date.now();
        try {
          const value = await fn();
          const ms = Date.now() - begun;
          if (ms >= limitMs) problems.push(`${what} took ${ms} ms`);
          return { ms, value };
        } catch (error) {
          problems.push(
            `${what} failed after ${Date.now() - begun} ms: ${error.message.split('\n')[0]}`);
          return { ms: Date.now() - begun };
        }
      };
      const startRss = rssMb(server.pid);
      const latencies = [];
      const started = Date.now();
      while (Date.now() - started < FLOOD_MS && problems.length === 0) {
        latencies.push((await timed('ping', () => server.client.ping(quick))).ms);
        await sleep(200);  // pacing between probes, not waiting for a condition
      }
      const growth = rssMb(server.pid) - startRss;
      t.diagnostic(`RSS grew by ${growth.toFixed(0)} MB`);
      if (memoryBoundsApply(t) && growth >= MAX_RSS_GROWTH_MB) {
        problems.push(`server memory grew by ${growth.toFixed(0)} MB in ${Date.now() - started} ms`);
      }
      const out = await timed('stdout', () => server.tool('stdout', { id: pid, lines: 3 }, quick));
      if (out.value) assert.match(out.value.stdout, /flood-line/);
      // kill waits up to a second to report the end; in a container the signal itself is an
      // engine round trip on top of that.
      const killed = await timed('kill', () =>
        server.tool('kill', { id: pid, signal: 'SIGKILL' }, quick),
      EXECUTOR === 'host' ? MAX_LATENCY_MS : MAX_LATENCY_MS + 1000);
      if (killed.value && EXECUTOR === 'host') assert.equal(killed.value.status, 'terminated');
      if (killed.value && killed.value.status !== 'terminated') {
        // In a container the signal is an engine round trip, and the flood still buffered in
        // the engine drains before the end is seen: the end must follow, not come at once.
        const ended = await server.tool('wait', { id: pid, until: { exit: true }, timeoutMs: 15000 },
          { timeout: 20000 });
        assert.equal(ended.status, 'exited', JSON.stringify(ended));
      }
      await timed('ping after the kill', () => server.client.ping(quick));
      assert.deepEqual(problems, [],
        `while a ${kind} process floods output: ping latencies (ms) ${latencies.join(' ')}`);
    });
  });
}
