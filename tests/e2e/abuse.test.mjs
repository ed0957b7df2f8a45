// Client abuse over stdio: a client that pipelines thousands of requests and reads nothing,
// sends a 100 MB line, invalid UTF-8, JSON nested 100,000 deep, or requests right before it
// closes the server's input. The server's memory stays bounded, every refusal says why, and the
// server goes on answering (or, at the end of its input, exits cleanly with nothing left
// running).
//
// The limits these tests meet: a message (one line) may be [stdio] max_message_bytes long,
// 16 MiB by default; arrays and objects may nest 64 deep; the stdio transport hands the core at
// most one read (64 KiB) of messages ahead of it and reads no more while over 4 MiB of answers
// wait for the client.
//
// The file speaks raw JSON lines to the stdio transport (RawServer), so it is registered for
// the e2e variant only (tests/e2e/CMakeLists.txt): the other variants would repeat it with the
// same transport.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  hostProcesses, memoryBoundsApply, RawServer, sleep, uniqueSleep, until,
} from './lib/server.mjs';

const MiB = 1024 * 1024;

// The server's resident memory in bytes (VmRSS of /proc/PID/status).
function rss(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line.split(/\s+/)[1]) * 1024;
}

const mb = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

// Writes text to the server's stdin and resolves once Node has handed it all to the pipe.
function writeAll(raw, text) {
  return new Promise((resolve, reject) => {
    raw.proc.stdin.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

async function started() {
  const raw = await RawServer.start();
  raw.proc.stdin.on('error', () => {});  // a late EPIPE once the server is gone
  const init = await raw.initialize();
  assert.ok(init.result, JSON.stringify(init));
  return raw;
}

// The server still answers, and is still the same process.
async function stillAnswers(raw, pid) {
  const pong = await raw.request('ping', undefined, 10000);
  assert.deepEqual(pong.result, {});
  assert.equal(raw.exited, null);
  assert.equal(raw.pid, pid);
}

function parseErrors(raw) {
  return raw.messages.filter((m) => m.error?.code === -32700);
}

describe('client abuse over stdio', () => {
  test('10,000 pipelined requests, answers unread: backpressure, bounded memory, every answer',
    async (t) => {
      const raw = await started();
      const N = 10000;
      try {
        // Warm up (allocator, tool table), then the baseline.
        for (let i = 0; i < 50; i++) await raw.request('tools/list');
        const oneAnswer = raw.lines.at(-1).length;
        await sleep(300);
        const base = rss(raw.pid);
        raw.proc.stdout.pause();
        const first = raw.nextId;
        // Half of them tools/list, whose answer is large; half ping.
        let text = '';
        for (let i = 0; i < N; i++) {
          const method = i % 2 === 0 ? 'tools/list' : 'ping';
          text += `${JSON.stringify({ jsonrpc: '2.0', id: raw.nextId++, method })}\n`;
        }
        raw.proc.stdin.write(text);
        // Not reading: the server must stop reading too, and not buffer 5,000 large answers in
        // memory (without flow control it did, about 10 MiB more each second here).
        let peak = base;
        for (let waited = 0; waited < 4000; waited += 200) {
          await sleep(200);
          peak = Math.max(peak, rss(raw.pid));
        }
        const unread = raw.proc.stdin.writableLength;
        console.log(`one answer ${oneAnswer} bytes; all answers ${mb(oneAnswer * N / 2)}; RSS ` +
          `${mb(base)} before, peak ${mb(peak)} unread; ${unread} request bytes still unread`);
        assert.ok(unread > 0,
          'the server read all 10,000 requests while its answers were not read');
        if (memoryBoundsApply(t)) {
          assert.ok(peak - base < 32 * MiB,
            `RSS grew by ${mb(peak - base)} while answers were not read`);
        }
        // Reading again: every answer arrives, exactly once.
        raw.proc.stdout.resume();
        await until(() => raw.messages.filter((m) => m.id >= first).length >= N, 60000,
          'all 10,000 answers', 200);
        const ids = raw.messages.filter((m) => m.id >= first).map((m) => m.id);
        assert.equal(ids.length, N);
        assert.equal(new Set(ids).size, N);
        assert.ok(raw.messages.filter((m) => m.id >= first).every((m) =>
          ((m.id - first) % 2 === 0 ? m.result?.tools?.length > 0 : m.result !== undefined)));
        const after = rss(raw.pid);
        console.log(`RSS after all answers were read: ${mb(after)}`);
        await stillAnswers(raw, raw.pid);
      } finally {
        raw.proc.stdout.resume();
        await raw.close();
      }
    });

  test('a burst of requests far larger than one read, then silence: every one is answered',
    async () => {
      // The server reads its input 64 KiB at a time from its event loop, which is woken by new
      // input only; what one read leaves behind must be read without waiting for more.
      const raw = await started();
      try {
        const first = raw.nextId;
        const N = 6000;
        let text = '';
        for (let i = 0; i < N; i++) {
          text += `${JSON.stringify({ jsonrpc: '2.0', id: raw.nextId++, method: 'ping' })}\n`;
        }
        assert.ok(text.length > 4 * 64 * 1024);
        await writeAll(raw, text);
        await until(() => raw.messages.filter((m) => m.id >= first).length >= N, 20000,
          `all ${N} answers`, 50);
        const ids = new Set(raw.messages.filter((m) => m.id >= first).map((m) => m.id));
        assert.equal(ids.size, N);
        await stillAnswers(raw, raw.pid);
      } finally {
        await raw.close();
      }
    });

  test('told to stop while its client reads nothing, the server still exits', async () => {
    const raw = await started();
    try {
      raw.proc.stdout.pause();
      let text = '';
      for (let i = 0; i < 2000; i++) {
        text += `${JSON.stringify({ jsonrpc: '2.0', id: raw.nextId++, method: 'tools/list' })}\n`;
      }
      raw.proc.stdin.write(text);
      await sleep(1000);
      raw.proc.kill('SIGTERM');
      const exit = await raw.waitExit(15000);
      assert.deepEqual(exit, { code: 0, signal: null }, raw.stderrTail());
    } finally {
      raw.proc.stdout.resume();
      await raw.close();
    }
  });

  test('a 100 MB line is refused with a clear error, read in bounded memory, and the server ' +
    'goes on', async (t) => {
    const raw = await started();
    let sampler;
    try {
      const pid = raw.pid;
      const base = rss(pid);
      let peak = base;
      sampler = setInterval(() => {
        try { peak = Math.max(peak, rss(pid)); } catch { /* gone */ }
      }, 50);
      const chunk = 'a'.repeat(MiB);
      await writeAll(raw, '{"jsonrpc":"2.0","id":"big","method":"tools/call","params":' +
        '{"name":"spawn","arguments":{"command":"echo ');
      for (let i = 0; i < 100; i++) await writeAll(raw, chunk);
      await writeAll(raw, '"}}}\n');
      const refusal = await raw.waitMessage((m) => m.id === 'big', 30000, 'the refusal');
      clearInterval(sampler);
      console.log(`RSS ${mb(base)} before, peak ${mb(peak)} while reading 100 MiB`);
      assert.equal(refusal.error?.code, -32600, JSON.stringify(refusal));
      assert.match(refusal.error.message, /larger than 16777216 bytes/);
      assert.match(refusal.error.message, /max_message_bytes/);
      assert.equal(refusal.error.data?.maxMessageBytes, 16 * MiB);
      if (memoryBoundsApply(t)) {
        assert.ok(peak - base < 50 * MiB, `RSS grew by ${mb(peak - base)}`);
      }
      // The id is found only when it comes before the oversized part; else it is null.
      await writeAll(raw, `{"jsonrpc":"2.0","method":"ping","params":{"pad":"${'b'.repeat(17 * MiB)}` +
        '"},"id":7}\n');
      const late = await raw.waitMessage((m) => m.error?.code === -32600 && m.id === null, 30000,
        'the refusal without an id');
      assert.match(late.error.message, /max_message_bytes/);
      await stillAnswers(raw, pid);
    } finally {
      clearInterval(sampler);
      await raw.close();
    }
  });

  test('invalid UTF-8, in strings and between messages, is a parse error that says so',
    async () => {
      const raw = await started();
      try {
        const pid = raw.pid;
        const bad = [
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":201,"method":"ping","params":{"x":"'),
            Buffer.from([0xff]), Buffer.from('"}}\n')]),
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":202,"method":"p'), Buffer.from([0xc3, 0x28]),
            Buffer.from('"}\n')]),
          // Overlong '/', an encoded surrogate, a code point above U+10FFFF.
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":203,"method":"ping","params":{"'),
            Buffer.from([0xc0, 0xaf]), Buffer.from('":1}}\n')]),
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":204,"method":"ping","params":{"x":"'),
            Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}\n')]),
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":205,"method":"ping","params":{"x":"'),
            Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from('"}}\n')]),
          // In the framing: a line of bytes that are no text at all, one before a message, a
          // message cut by an overlong newline (0xC0 0x8A is not a line end).
          Buffer.from([0xff, 0xfe, 0xfd, 0x0a]),
          Buffer.concat([Buffer.from([0x80]), Buffer.from('{"jsonrpc":"2.0","id":206,"method":"ping"}\n')]),
          Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":207,"method":"ping"}'),
            Buffer.from([0xc0, 0x8a]), Buffer.from('{"jsonrpc":"2.0","id":208,"method":"ping"}\n')]),
        ];
        for (const bytes of bad) raw.sendRaw(bytes);
        await until(() => parseErrors(raw).length >= bad.length, 10000, 'a parse error for each');
        const errors = parseErrors(raw);
        assert.equal(errors.length, bad.length);
        for (const e of errors) {
          assert.equal(e.id, null);
          assert.match(e.error.message, /not valid UTF-8 \(first bad byte at offset \d+\)/,
            e.error.message);
        }
        // Nothing of it was taken as a request.
        assert.ok(!raw.messages.some((m) => m.id > 200));
        // A lone UTF-16 surrogate written as an escape is no valid text either.
        raw.sendRaw('{"jsonrpc":"2.0","id":209,"method":"ping","params":{"x":"\\ud800"}}\n');
        await until(() => parseErrors(raw).length > bad.length, 5000, 'the surrogate refusal');
        assert.match(parseErrors(raw).at(-1).error.message, /parse error/);
        // Valid non-ASCII text goes through.
        const echoed = await raw.request('tools/call',
          { name: 'spawn', arguments: { command: 'echo "é€😀"' } }, 10000);
        assert.equal(echoed.result.structuredContent.stdout, 'é€😀\n');
        await stillAnswers(raw, pid);
      } finally {
        await raw.close();
      }
    });

  test('JSON nested 100,000 deep is refused at the nesting limit, without a crash', async () => {
    const raw = await started();
    try {
      const pid = raw.pid;
      const deep = 100000;
      raw.sendRaw(`${'['.repeat(deep)}\n`);
      raw.sendRaw(`${'['.repeat(deep)}${']'.repeat(deep)}\n`);
      raw.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":${'{"a":'.repeat(deep)}1` +
        `${'}'.repeat(deep)}}}\n`);
      await until(() => parseErrors(raw).length >= 3, 10000, 'three refusals');
      for (const e of parseErrors(raw)) {
        assert.equal(e.id, null);
        assert.match(e.error.message, /nested more than 64 levels deep/, e.error.message);
      }
      // 64 levels are fine.
      const ok = await raw.request('ping', { a: JSON.parse(`${'['.repeat(62)}${']'.repeat(62)}`) });
      assert.deepEqual(ok.result, {});
      await stillAnswers(raw, pid);
    } finally {
      await raw.close();
    }
  });

  test('requests right before the end of input: those that need no process are answered, ' +
    'then the server exits and leaves nothing running', async () => {
    const raw = await started();
    const bg = uniqueSleep('4201.');
    const fg = uniqueSleep('4202.');
    try {
      const lines = [
        { jsonrpc: '2.0', id: 101, method: 'ping' },
        { jsonrpc: '2.0', id: 102, method: 'tools/list' },
        { jsonrpc: '2.0', id: 103, method: 'tools/call', params: { name: 'ps', arguments: {} } },
        { jsonrpc: '2.0', id: 104, method: 'tools/call',
          params: { name: 'spawn', arguments: { command: `sleep ${bg}`, background: true } } },
        { jsonrpc: '2.0', id: 105, method: 'tools/call',
          params: { name: 'spawn', arguments: { command: `sleep ${fg}` } } },
        { jsonrpc: '2.0', id: 106, method: 'ping' },
      ];
      raw.proc.stdin.end(lines.map((m) => `${JSON.stringify(m)}\n`).join(''));
      const exit = await raw.waitExit(15000);
      assert.deepEqual(exit, { code: 0, signal: null }, raw.stderrTail());
      await until(() => raw.proc.stdout.readableEnded, 5000, 'the end of the output');
      const answered = raw.messages.filter((m) => m.id > 100).map((m) => m.id);
      // Each at most once; those that need no process, always, in order.
      assert.equal(new Set(answered).size, answered.length, JSON.stringify(answered));
      assert.deepEqual(answered.filter((id) => [101, 102, 103, 106].includes(id)),
        [101, 102, 103, 106]);
      for (const m of raw.messages.filter((x) => x.id > 100)) {
        assert.equal(m.error, undefined, JSON.stringify(m));
      }
      console.log(`answered before the exit: ${JSON.stringify(answered)}`);
      await until(() => hostProcesses(`sleep ${bg}`).length === 0 &&
        hostProcesses(`sleep ${fg}`).length === 0, 5000, 'no process of the server left');
    } finally {
      await raw.close();
      for (const d of [bg, fg]) {
        for (const p of hostProcesses(`sleep ${d}`)) {
          try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
    }
  });
});
