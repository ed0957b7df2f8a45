// Helpers for the tests of the agent tools (wait, cursors, keys, resize, resources): calls with
// the parameters spelled out, the byte pattern of `pmcp-test-child spam`, a cursor-following
// reader and a loopback HTTP GET.
import assert from 'node:assert/strict';

// `wait` with until; extra holds since, stream, timeoutMs, ignoreCase. Returns structuredContent.
export function waitFor(server, id, until, extra = {}, options = {}) {
  return server.tool('wait', { id, until, ...extra }, options);
}

// `wait` for the process to exit; asserts that it did and returns the result.
export async function waitExit(server, id, timeoutMs = 20000) {
  const r = await waitFor(server, id, { exit: true }, { timeoutMs });
  assert.equal(r.status, 'exited', `${id} did not exit within ${timeoutMs} ms: ` +
    JSON.stringify(r));
  assert.equal(r.running, false);
  return r;
}

// Kills a process that a test may have left running; ignores every error.
export async function cleanup(server, id) {
  if (id === undefined) return;
  await server.call('kill', { id, signal: 'SIGKILL' }).catch(() => {});
}

// The byte of `pmcp-test-child spam N` at an absolute offset (tests/helpers/child_pattern.hpp):
// 64-byte lines of printable characters, shifting by one every line.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SPAM_LINES = Array.from({ length: 62 }, (_, shift) => {
  let line = '';
  for (let i = 0; i < 63; i++) line += ALPHABET[(shift + i) % 62];
  return `${line}\n`;
});

// The `length` characters of the spam pattern starting at `offset`.
export function spamText(offset, length) {
  const parts = [];
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const lineNo = Math.floor(pos / 64);
    const line = SPAM_LINES[lineNo % 62];
    const from = pos % 64;
    const to = Math.min(64, from + (end - pos));
    parts.push(line.slice(from, to));
    pos += to - from;
  }
  return parts.join('');
}

// The first index where a and b differ (or -1), to explain a mismatch without printing MBs.
export function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

// The lines of a match's `context`, whatever its shape: a string (split at line breaks), an
// array (of strings or of objects), or an object such as {before, after}.
export function contextLines(context) {
  if (context === undefined || context === null) return [];
  if (typeof context === 'string') {
    return context.split(/\r?\n/).filter((line, i, all) => !(line === '' && i === all.length - 1));
  }
  if (Array.isArray(context)) return context.flatMap(contextLines);
  if (typeof context === 'object') {
    if (typeof context.text === 'string') return contextLines(context.text);
    return Object.values(context).flatMap(contextLines);
  }
  return [String(context)];
}
