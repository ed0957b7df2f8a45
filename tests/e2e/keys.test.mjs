// stdin keys and eof, and resize (docs/agent-tools.md): named keys encoded as the terminal
// expects (application cursor mode included), fixed bytes on a pipe, end of input, long input
// to a terminal, and a terminal resize that the program sees.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, waitExit, waitFor } from './lib/agent.mjs';
import { child, ID_PREFIX, useServer } from './lib/server.mjs';

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// A pattern matching exactly one whole line.
const wholeLine = (text) => `^${escapeRegExp(text)}$`;

// The keys and what `cat -A` prints for their xterm encodings, normal cursor mode. (Backspace,
// DEL, is the line editor's erase character: tested on its own below.)
const NORMAL_KEYS = [
  ['Up', '^[[A'], ['Down', '^[[B'], ['Right', '^[[C'], ['Left', '^[[D'],
  ['Home', '^[[H'], ['End', '^[[F'],
  ['Insert', '^[[2~'], ['Delete', '^[[3~'], ['PageUp', '^[[5~'], ['PageDown', '^[[6~'],
  ['F1', '^[OP'], ['F4', '^[OS'], ['F5', '^[[15~'], ['F12', '^[[24~'],
  ['M-x', '^[x'], ['C-a', '^A'], ['Escape', '^['], ['Esc', '^['],
  ['Tab', '^I'], ['Space', ' '],
];
// Application cursor mode (DECCKM, ESC [ ? 1 h): the cursor keys, Home and End use SS3.
const APPLICATION_KEYS = [
  ['Up', '^[OA'], ['Down', '^[OB'], ['Right', '^[OC'], ['Left', '^[OD'],
  ['Home', '^[OH'], ['End', '^[OF'], ['F1', '^[OP'], ['PageUp', '^[[5~'],
];
// The byte count of a `cat -A` rendering (each ^X is one byte, everything else itself).
const byteCount = (shown) => shown.replace(/\^./g, 'x').length;

describe('keys', () => {
  const srv = useServer({ before, after });

  // A terminal process that shows what it reads, byte by byte, one line per Enter, each line
  // ending in `$`. Its output never equals the input, so the default `since` (which skips an
  // echo of the input) never skips it; the terminal's own echo is off.
  async function showKeys(setup = '') {
    const { pid } = await srv().spawn({
      command: `stty -echo; ${setup} echo ready; exec cat -A`, tty: true, background: true,
    });
    const ready = await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
    assert.equal(ready.status, 'matched', JSON.stringify(ready));
    return pid;
  }

  test('vim driven with Escape and Enter writes the file', async () => {
    const file = path.join(srv().work, 'vim-keys.txt');
    const { pid } = await srv().spawn({
      command: `vim -u NONE -N ${file}`, tty: true, background: true,
    });
    try {
      const shown = await waitFor(srv(), pid, { pattern: 'vim-keys\\.txt' }, { timeoutMs: 15000 });
      assert.equal(shown.status, 'matched', JSON.stringify(shown));
      const typed = await srv().tool('stdin', { id: pid, input: 'ihello keys', keys: ['Escape'] });
      assert.equal(typed.bytes, 12);
      const quit = await srv().tool('stdin', { id: pid, input: ':wq', keys: ['Enter'] });
      assert.equal(quit.bytes, 4);
      const end = await waitExit(srv(), pid);
      assert.equal(end.exitCode, 0);
      assert.equal(await readFile(file, 'utf8'), 'hello keys\n');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('keys on a terminal in normal cursor mode', async () => {
    const pid = await showKeys();
    try {
      for (const [name, shown] of NORMAL_KEYS) {
        const sent = await srv().tool('stdin', { id: pid, input: '<', keys: [name, 'Enter'] });
        assert.equal(sent.bytes, 1 + byteCount(shown) + 1, `bytes sent for ${name}`);
        const r = await waitFor(srv(), pid, { pattern: wholeLine(`<${shown}$`) },
          { timeoutMs: 10000 });
        if (r.status !== 'matched') {
          // What the terminal got, for the failure message.
          const seen = await srv().tool('stdout', { id: pid, since: { terminal: 0 } });
          assert.fail(`${name}: ${JSON.stringify(r)}; the terminal's bytes: ` +
            JSON.stringify(seen.stdout ?? seen));
        }
      }
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('keys follow the terminal into application cursor mode', async () => {
    const pid = await showKeys("printf '\\033[?1h';");
    try {
      const names = APPLICATION_KEYS.map(([name]) => name);
      const expected = APPLICATION_KEYS.map(([, shown]) => shown).join('');
      const sent = await srv().tool('stdin', { id: pid, keys: [...names, 'Enter'] });
      assert.equal(sent.bytes, byteCount(expected) + 1);
      const r = await waitFor(srv(), pid, { pattern: wholeLine(`${expected}$`) },
        { timeoutMs: 10000 });
      assert.equal(r.status, 'matched', JSON.stringify(r));
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('several keys in one call are sent in order after the input', async () => {
    const pid = await showKeys();
    try {
      await srv().tool('stdin', { id: pid, input: 'go', keys: ['C-b', 'Left', 'M-q', 'Enter'] });
      const r = await waitFor(srv(), pid, { pattern: wholeLine('go^B^[[D^[q$') },
        { timeoutMs: 10000 });
      assert.equal(r.status, 'matched', JSON.stringify(r));
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('the bytes a raw terminal reads: Enter is CR, Backspace DEL, C-d 0x04', async () => {
    const { pid } = await srv().spawn({
      command: 'stty raw -echo; echo ready; od -An -tx1 -N 6', tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: '^ready' }, { timeoutMs: 10000 });
      const sent = await srv().tool('stdin', {
        id: pid, keys: ['Enter', 'Backspace', 'C-d', 'C-z', 'Tab', 'Space'],
      });
      assert.equal(sent.bytes, 6);
      const r = await waitFor(srv(), pid, { pattern: '( [0-9a-f]{2}){6}' }, { timeoutMs: 10000 });
      assert.equal(r.match.text, ' 0d 7f 04 1a 09 20');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('Backspace is DEL, which the terminal line editor treats as erase', async () => {
    const { pid } = await srv().spawn({
      command: 'read line; echo "got [$line]"', tty: true, background: true,
    });
    try {
      const first = await srv().tool('stdin', { id: pid, input: 'abX', keys: ['Backspace'] });
      assert.equal(first.bytes, 4);
      await srv().tool('stdin', { id: pid, input: 'c', keys: ['Enter'] });
      const r = await waitFor(srv(), pid, { pattern: '^got \\[.*\\]$' }, { timeoutMs: 10000 });
      assert.equal(r.match.text, 'got [abc]');
      assert.equal((await waitExit(srv(), pid)).exitCode, 0);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('on a pipe, keys are fixed bytes: Enter is LF; eof closes the input', async () => {
    const { pid } = await srv().spawn({ command: 'od -An -tx1 -v', background: true });
    try {
      const sent = await srv().tool('stdin', {
        id: pid, input: 'a', keys: ['Tab', 'Enter', 'Backspace', 'C-c', 'Escape', 'M-x'],
        eof: true,
      });
      assert.equal(sent.bytes, 8);
      const end = await waitExit(srv(), pid);
      assert.equal(end.exitCode, 0);
      const out = await srv().stdout(pid);
      assert.equal(out.stdout.trim().split(/\s+/).join(' '), '61 09 0a 7f 03 1b 1b 78');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('eof alone ends a pipe reader after what it was sent', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} cat`, background: true });
    try {
      await srv().tool('stdin', { id: pid, input: 'last line\\n' });
      await srv().tool('stdin', { id: pid, eof: true });
      const end = await waitExit(srv(), pid);
      assert.equal(end.exitCode, 0);
      assert.equal((await srv().stdout(pid)).stdout, 'last line\n');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('eof on a terminal sends ^D: a line reader sees the end of input', async () => {
    const { pid } = await srv().spawn({
      command: 'stty -echo; echo ready; wc -c', tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
      const sent = await srv().tool('stdin', { id: pid, input: 'hello\\r', eof: true });
      assert.equal(sent.bytes, 7);
      const r = await waitFor(srv(), pid, { pattern: '^\\s*\\d+$' }, { timeoutMs: 10000 });
      assert.equal(r.match.text.trim(), '6');
      assert.equal((await waitExit(srv(), pid)).exitCode, 0);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a long input to a terminal arrives whole', async () => {
    const { pid } = await srv().spawn({
      command: 'stty -echo; echo ready; wc -c', tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
      // 12 lines of 999 characters and CR: 12000 bytes in one call.
      const line = 'x'.repeat(999);
      const sent = await srv().tool('stdin', { id: pid, input: `${line}\\r`.repeat(12), eof: true });
      assert.equal(sent.bytes, 12001);
      const r = await waitFor(srv(), pid, { pattern: '^\\s*\\d+$' }, { timeoutMs: 15000 });
      assert.equal(r.match.text.trim(), '12000');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('an unknown key name is an error listing the valid names; nothing is sent', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} cat`, background: true });
    try {
      const message = await srv().toolError('stdin', {
        id: pid, input: 'partial', keys: ['Enter', 'Hyper-Q'],
      });
      assert.match(message, /Hyper-Q/);
      for (const name of ['Enter', 'Tab', 'Escape', 'Backspace', 'Up', 'PageDown', 'F12']) {
        assert.ok(message.includes(name), `valid name ${name} not listed in: ${message}`);
      }
      assert.match(message, /C-a/);
      assert.match(message, /M-/);
      await srv().toolError('stdin', { id: pid, keys: ['C-'] });
      await srv().toolError('stdin', { id: pid, keys: ['F13'] });
      await srv().tool('stdin', { id: pid, input: 'after\\n' });
      const r = await waitFor(srv(), pid, { pattern: '^after$' }, { timeoutMs: 10000 });
      assert.equal(r.status, 'matched');
      assert.equal((await srv().stdout(pid)).stdout, 'after\n');
    } finally {
      await cleanup(srv(), pid);
    }
  });
});

describe('resize', () => {
  const srv = useServer({ before, after });

  test('stty size sees the new size', async () => {
    const { pid } = await srv().spawn({
      command: 'stty -echo; echo ready; while read x; do stty size; done',
      tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
      await srv().tool('stdin', { id: pid, input: '\\r' });
      const before = await waitFor(srv(), pid, { pattern: '^\\d+ \\d+$' }, { timeoutMs: 10000 });
      assert.equal(before.match.text, '30 120');
      const resized = await srv().tool('resize', { id: pid, cols: 100, rows: 40 });
      assert.deepEqual(resized, { id: pid, cols: 100, rows: 40 });
      // The docker engine applies an exec's resize on its own time, after the tool answers, so
      // the program is asked again until it sees the new size (at once on the host).
      let afterResize;
      let asked = 0;
      while (asked < 20) {
        await srv().tool('stdin', { id: pid, input: '\\r' });
        asked += 1;
        afterResize = await waitFor(srv(), pid, { pattern: '^\\d+ \\d+$' }, { timeoutMs: 10000 });
        if (afterResize.match.text === '40 100') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(afterResize.match.text, '40 100');
      assert.equal(afterResize.match.line, 2 + asked);  // absolute line numbers
    } finally {
      await cleanup(srv(), pid);
    }
  });

  // libvterm 0.1.4 left the cursor on a negative row when a smaller screen pushed the lines
  // above it into the scrollback, and the program's next erase segfaulted the server (found by
  // the terminal fuzz harness).
  test('shrinking the screen below the cursor, then an erase, is harmless', async () => {
    const { pid } = await srv().spawn({
      command: "stty -echo; for i in $(seq 28); do echo line $i; done; printf '\\033[4;7Hready\\n'; " +
        "read x; printf '\\033[K\\033[1Jdone\\n'; exec sleep 30",
      tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: 'ready' }, { timeoutMs: 10000 });
      await srv().tool('resize', { id: pid, cols: 120, rows: 5 });
      await srv().tool('stdin', { id: pid, input: '\\r' });
      const done = await waitFor(srv(), pid, { pattern: 'done' }, { timeoutMs: 10000 });
      assert.equal(done.status, 'matched', JSON.stringify(done));
      await srv().client.ping();
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('the program gets SIGWINCH', async () => {
    const { pid } = await srv().spawn({ command: `exec ${child()} winch`, tty: true,
      background: true });
    try {
      await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
      await srv().tool('resize', { id: pid, cols: 80, rows: 24 });
      const r = await waitFor(srv(), pid, { pattern: '^size \\d+ \\d+$' }, { timeoutMs: 10000 });
      assert.equal(r.match.text, 'size 24 80');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('the rendered screen takes the new width', async () => {
    const { pid } = await srv().spawn({
      command: "stty -echo; echo ready; read x; printf '%060d\\n' 0; exec sleep 30",
      tty: true, background: true,
    });
    try {
      await waitFor(srv(), pid, { pattern: '^ready$' }, { timeoutMs: 10000 });
      await srv().tool('resize', { id: pid, cols: 40, rows: 10 });
      await srv().tool('stdin', { id: pid, input: '\\r' });
      await waitFor(srv(), pid, { pattern: '^0{60}$' }, { timeoutMs: 10000 });
      const screen = await srv().tool('stdout', { id: pid, view: 'screen' });
      const lines = screen.stdout.split('\n').map((line) => line.trimEnd());
      assert.ok(lines.length <= 10, `${lines.length} lines on a 10-row screen`);
      const at = lines.indexOf('0'.repeat(40));
      assert.ok(at >= 0, `no 40-column line in ${JSON.stringify(lines)}`);
      assert.equal(lines[at + 1], '0'.repeat(20));
      assert.deepEqual(screen.cursor, { row: at + 2, col: 0 });
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('resize is an error for a pipe process and for bad sizes', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    try {
      const message = await srv().toolError('resize', { id: pid, cols: 100, rows: 40 });
      assert.match(message, /tty|terminal/i);
      assert.match(message, new RegExp(pid));
    } finally {
      await cleanup(srv(), pid);
    }
    const tty = await srv().spawn({ command: 'exec sleep 30', tty: true, background: true });
    try {
      await srv().toolError('resize', { id: tty.pid, cols: 0, rows: 40 });
      await srv().toolError('resize', { id: tty.pid, cols: 100 });
      await srv().toolError('resize', { id: `${ID_PREFIX}-999999`, cols: 100, rows: 40 });
    } finally {
      await cleanup(srv(), tty.pid);
    }
  });
});
