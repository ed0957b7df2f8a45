// TTY mode: a real pseudo-terminal of 120x30 with TERM set, rendered to plain text, that
// interactive programs (a shell, python, vim, top, less) work in.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { child, hostProcesses, SANDBOX, uniqueSleep, until, useServer } from './lib/server.mjs';

describe('tty', () => {
  const srv = useServer({ before, after });

  test('the terminal is 120 columns by 30 rows', async () => {
    const r = await srv().spawn({ command: 'stty size', tty: true });
    assert.equal(r.status, 'terminated');
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^30 120$/m);
  });

  test('stdin, stdout and stderr are a terminal and TERM is xterm-256color', async () => {
    const r = await srv().spawn({
      command: 'test -t 0 && test -t 1 && test -t 2 && echo "is-a-tty term=$TERM"',
      tty: true,
    });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /is-a-tty term=xterm-256color/);
    const pipes = await srv().spawn({ command: 'test -t 0 || test -t 1 || echo not-a-tty' });
    assert.equal(pipes.stdout, 'not-a-tty\n');
  });

  test('a program sees a terminal of 30 rows and 120 columns with TERM set', async () => {
    const r = await srv().spawn({ command: `exec ${child()} tty`, tty: true });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^tty yes\s*$/m);
    assert.match(r.stdout, /^TERM xterm-256color\s*$/m);
    assert.match(r.stdout, /^size 30 120\s*$/m);
    const piped = await srv().spawn({ command: `exec ${child()} tty` });
    assert.match(piped.stdout, /^tty no$/m);
    assert.match(piped.stdout, /^size none$/m);
  });

  test('the output of a quick terminal command is complete on every run', async () => {
    for (let i = 0; i < 15; i++) {
      const r = await srv().spawn({ command: `echo tty-run-${i}; exit ${i % 3}`, tty: true });
      assert.equal(r.status, 'terminated', `run ${i}`);
      assert.equal(r.exitCode, i % 3, `run ${i}`);
      assert.match(r.stdout, new RegExp(`^tty-run-${i}\\s*$`, 'm'), `run ${i}`);
    }
  });

  test('a large terminal output keeps its end', async () => {
    const r = await srv().spawn({ command: 'seq 1 20000', tty: true, timeoutMs: 30000 });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /truncated/);
    assert.match(r.stdout, /^19999\s*\n20000\s*$/m);
    const out = await srv().stdout(r.pid, 3);
    const lines = out.stdout.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
    assert.deepEqual(lines.slice(-2), ['19999', '20000']);
    assert.ok(lines.length <= 3, `asked for 3 lines, got ${lines.length}`);
  });

  test('the process has the terminal as its controlling terminal', async () => {
    // /dev/tty opens only for a process with a controlling terminal.
    const r = await srv().spawn({
      command: 'tty; ps -o tty= -p $$; : </dev/tty && echo has-ctty', tty: true,
    });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^has-ctty$/m);
    // In the host sandbox the terminal is made in the sandbox's own devpts, so it has a name
    // there too.
    assert.match(r.stdout, /^\/dev\/pts\/\d+$/m);
    assert.match(r.stdout, /^pts\/\d+\s*$/m);
  });

  test('output is rendered text: no escape codes, stderr on the screen, stderr field empty',
    async () => {
      const r = await srv().spawn({
        command: "printf '\\033[1;31mred\\033[0m plain\\n'; echo to-err >&2; " +
          "printf 'abc\\rX\\n'",
        tty: true,
      });
      assert.equal(r.exitCode, 0);
      assert.ok(!r.stdout.includes('\x1b'), `escape codes in ${JSON.stringify(r.stdout)}`);
      assert.match(r.stdout, /^red plain\s*$/m);
      assert.match(r.stdout, /^to-err\s*$/m);
      // A carriage return overwrites like a terminal does.
      assert.match(r.stdout, /^Xbc\s*$/m);
      const out = await srv().stdout(r.pid);
      assert.equal(out.stderr, '');
      assert.match(out.stdout, /^red plain\s*$/m);
      assert.ok(!out.stdout.includes('\x1b'));
    });

  test('output longer than the screen is kept as scrollback', async () => {
    const r = await srv().spawn({ command: 'seq 1 200', tty: true });
    assert.equal(r.exitCode, 0);
    const out = await srv().stdout(r.pid, 100);
    const lines = out.stdout.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
    assert.equal(lines.at(-1), '200');
    assert.ok(lines.includes('120'), 'line 120 (beyond one screen) is missing');
    assert.ok(!lines.includes('50'), 'more than the last 100 lines returned');
  });

  test('python3 REPL: prompt, input, result', async () => {
    const { pid } = await srv().spawn({ command: 'python3 -q', tty: true, background: true });
    try {
      await srv().waitOutput(pid, /^>>>/m, 15000);
      const sent = await srv().stdin(pid, 'print(6*7)\\n');
      assert.equal(sent.id, pid);
      assert.equal(sent.bytes, 11);
      const out = await srv().waitOutput(pid, /^42\s*$/m, 10000);
      assert.equal(out.status, 'running');
      assert.equal(out.stderr, '');
      await srv().stdin(pid, 'exit()\\n');
      const end = await srv().waitExit(pid, 10000);
      assert.equal(end.exitCode, 0);
    } finally {
      await srv().kill(pid, 'SIGKILL').catch(() => {});
    }
  });

  test('Ctrl-C (\\x03) interrupts the foreground job of a terminal shell', async () => {
    const duration = uniqueSleep('100.');
    const { pid } = await srv().spawn({
      command: `trap 'echo interrupted' INT; sleep ${duration}; echo next-command`,
      tty: true, background: true,
    });
    try {
      await until(() => hostProcesses(`sleep ${duration}`).some((p) => p.args.startsWith('sleep')),
        5000, 'the sleep to start');
      const sent = await srv().stdin(pid, '\\x03');
      assert.equal(sent.bytes, 1);
      const end = await srv().waitExit(pid, 5000);
      assert.match(end.stdout, /interrupted/);
      assert.match(end.stdout, /next-command/);
      assert.equal(end.exitCode, 0);
      assert.equal(hostProcesses(`sleep ${duration}`).length, 0);
    } finally {
      await srv().kill(pid, 'SIGKILL').catch(() => {});
    }
  });

  test('vim: type text, :wq, the file is written', async () => {
    const file = path.join(srv().work, 'vim-test.txt');
    const { pid } = await srv().spawn({
      command: `vim -u NONE -N ${file}`, tty: true, background: true,
    });
    try {
      // An empty buffer shows "~" lines and the file name on the last line.
      await srv().waitOutput(pid, /vim-test\.txt/, 10000);
      await srv().waitOutput(pid, /^~/m, 10000);
      await srv().stdin(pid, 'ihello from vim\\x1b:wq\\r');
      const end = await srv().waitExit(pid, 10000);
      assert.equal(end.exitCode, 0);
      assert.equal(await readFile(file, 'utf8'), 'hello from vim\n');
    } finally {
      await srv().kill(pid, 'SIGKILL').catch(() => {});
    }
  });

  test('top shows its header and quits on q', async () => {
    const { pid } = await srv().spawn({ command: 'top', tty: true, background: true });
    try {
      const out = await srv().waitOutput(pid, /load average|Tasks/, 10000);
      assert.ok(!out.stdout.includes('\x1b'));
      await srv().stdin(pid, 'q');
      const end = await srv().waitExit(pid, 10000);
      assert.equal(end.exitCode, 0);
    } finally {
      await srv().kill(pid, 'SIGKILL').catch(() => {});
    }
  });

  test('less shows the file one screen at a time and quits on q', async () => {
    const file = path.join(srv().work, 'less-test.txt');
    await writeFile(file, Array.from({ length: 100 }, (_, i) => `row-${i + 1}\n`).join(''));
    const { pid } = await srv().spawn({ command: `less ${file}`, tty: true, background: true });
    try {
      const out = await srv().waitOutput(pid, /^row-29\s*$/m, 10000);
      assert.match(out.stdout, /^row-1\s*$/m);
      assert.doesNotMatch(out.stdout, /^row-31\s*$/m, 'less showed more than one screen');
      // Space pages forward.
      await srv().stdin(pid, ' ');
      await srv().waitOutput(pid, /^row-50\s*$/m, 10000);
      await srv().stdin(pid, 'q');
      const end = await srv().waitExit(pid, 10000);
      assert.equal(end.exitCode, 0);
    } finally {
      await srv().kill(pid, 'SIGKILL').catch(() => {});
    }
  });

  test('a terminal process is killed with its whole process group', async () => {
    const duration = uniqueSleep('300.');
    const { pid } = await srv().spawn({
      command: `sleep ${duration} & sleep ${duration}; echo never`, tty: true, background: true,
    });
    await until(() => hostProcesses(`sleep ${duration}`)
      .filter((p) => p.args.startsWith('sleep')).length >= 2, 5000, 'both sleeps to start');
    const killed = await srv().kill(pid);
    assert.equal(killed.status, 'terminated');
    await until(() => hostProcesses(`sleep ${duration}`).length === 0, 5000,
      'every sleep of the group to end');
  });
  // Output that broke libvterm 0.1 (found by the terminal fuzz harness): REP with nothing to
  // repeat looped forever on the core thread, and a CSI with hundreds of parameters wrote past
  // libvterm's argument array. The terminal guard rewrites both; the server keeps serving.
  test('escape sequences that hang or overflow libvterm are harmless', async () => {
    const r = await srv().spawn({
      command: "printf '\\033[b-\\033[3b|\\033['; for i in $(seq 300); do printf '9;'; done; " +
        "printf 'm\\033[99999999999999999999Cend\\n'",
      tty: true, timeoutMs: 20000 });
    assert.equal(r.status, 'terminated', JSON.stringify(r));
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /----\|/);
    await srv().client.ping();
  });
});
