// Shared by the flood tests: a watcher that pings the server while a flood runs and records the
// largest RSS it sees, and the memory bound that the server's configured buffers allow.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  McpServer, SANITIZER, hostProcesses, memoryBoundsApply, sleep, until,
} from './server.mjs';

// A sanitizer build runs several times slower and stops now and then for its own work (TSan
// most of all: one pause of about 1.5 s was seen in a 100 MiB flood); its pings get more time.
export const MAX_PING_MS = SANITIZER ? 5000 : 1000;
const PING_EVERY_MS = 100;
export const MiB = 1 << 20;
// What the server may use beyond its output buffers and its starting size: stacks, malloc's
// free lists, JSON of the answers, the transport's buffers.
const SLACK_BYTES = 32 * MiB;
// The server's own bookkeeping per live process beyond its buffers (measured: about 2.5 KB).
const PER_PROCESS_BYTES = 16 * 1024;

export function statusKb(pid, field) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))[1]);
}

// Pings the server every PING_EVERY_MS while a flood runs; records latencies, failures (a ping
// slower than maxPingMs) and the largest RSS seen. stop() ends it and returns what it saw.
export function watch(server, { maxPingMs = MAX_PING_MS } = {}) {
  const latencies = [];
  const problems = [];
  let maxRssKb = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      try {
        await server.client.ping({ timeout: 5000 });
        const ms = Date.now() - t;
        latencies.push(ms);
        if (ms >= maxPingMs) problems.push(`ping took ${ms} ms`);
      } catch (error) {
        problems.push(`ping failed after ${Date.now() - t} ms: ${error.message.split('\n')[0]}`);
      }
      try {
        maxRssKb = Math.max(maxRssKb, statusKb(server.pid, 'VmRSS'));
      } catch (error) {
        problems.push(`the server is gone: ${error.message}`);
        break;
      }
      await sleep(PING_EVERY_MS);  // pacing between probes, not waiting for a condition
    }
  })();
  let stopped;
  const finish = async () => {
    running = false;
    await loop;
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q) => sorted[Math.floor(q * (sorted.length - 1))];
    return {
      problems,
      maxRssKb,
      summary: `${latencies.length} pings, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, ` +
        `max ${sorted.at(-1)} ms`,
    };
  };
  // Idempotent, so that an after() hook can stop a watcher that a failed test left running.
  return { stop: () => (stopped ??= finish()) };
}

// The server's peak RSS must stay below its size before the flood plus what `processes`
// processes may keep in their two output buffers each, plus SLACK_BYTES (release builds only:
// see memoryBoundsApply; t is the test, for its diagnostic).
export function checkMemory(t, server, baselineKb, { processes, bufferBytes }) {
  const boundKb = baselineKb +
    (processes * (2 * bufferBytes + PER_PROCESS_BYTES) + SLACK_BYTES) / 1024;
  const peakKb = statusKb(server.pid, 'VmHWM');
  if (!memoryBoundsApply(t)) return { peakKb, boundKb };
  assert.ok(peakKb <= boundKb,
    `peak RSS ${(peakKb / 1024).toFixed(1)} MiB above the bound ` +
    `${(boundKb / 1024).toFixed(1)} MiB (${(baselineKb / 1024).toFixed(1)} MiB at the start, ` +
    `${processes} process(es) with ${bufferBytes} bytes per stream)`);
  return { peakKb, boundKb };
}

export async function noneLeft(needle) {
  await until(() => hostProcesses(needle).length === 0, 10000,
    `no process left with ${needle} in its command line`);
}

// A server whose output buffers hold bufferBytes per stream; limits: more [limits] keys;
// options: more options of McpServer.start.
export async function startServer(bufferBytes, limits = {}, options = {}) {
  return McpServer.start({
    ...options,
    config: { limits: { output_buffer_bytes: bufferBytes, ...limits } },
  });
}
