// Process faults: children that ignore SIGTERM, fork a thousand grandchildren, close their
// output but keep running, or daemonize (double fork and setsid). The kill ladder, reaping and
// "no process survives" must hold after kill, after the command's own end, and after the
// server's end (end of input, SIGTERM, SIGKILL).
//
// What is caught where: the host executor's supervisor (in the sandbox, the command's launcher)
// is a child subreaper, so a daemon that leaves its session is still re-parented to it and
// killed when its command ends, sandbox or not. The docker executor
// signals and sweeps process groups only: a daemon in a session of its own escapes both the
// command's end and the server's, and lives on in the container.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';

import {
  EXECUTOR, hostProcesses, McpServer, RawServer, uniqueSleep, until,
} from './lib/server.mjs';

// Does the executor catch a process that leaves its session? (See the header.)
const CATCHES_DAEMONS = EXECUTOR === 'host';

// Running `sleep D` processes (not the shells whose command lines mention them; a zombie shows
// as `[sleep] <defunct>` and is not counted).
const sleeps = (duration) =>
  hostProcesses(`sleep ${duration}`).filter((p) => p.args.startsWith('sleep'));

// How many `sleep D` run for each D of durations, from one look at the process table.
function sleepCounts(durations) {
  const running = hostProcesses('sleep ').filter((p) => p.args.startsWith('sleep '));
  return durations.map((d) => running.filter((p) => p.args === `sleep ${d}`).length);
}

function killAll(durations) {
  for (const d of durations) {
    for (const p of hostProcesses(`sleep ${d}`)) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

// Children of `pid` that are zombies: a process the server started and did not reap.
function zombieChildren(pid) {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,stat='],
    { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.split('\n').map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, stat]) => Number(ppid) === pid && stat?.startsWith('Z'));
}

// A double fork with setsid, as daemons do: the subshell starts setsid in the background and
// ends; the shell under setsid starts `sleep D` in the background and ends. The sleep is left in
// a session and process group of its own, its parent gone, its output on /dev/null.
const daemonize = (duration) =>
  `( setsid sh -c 'sleep ${duration} & exit 0' </dev/null >/dev/null 2>&1 & ); echo forked`;

const GRANDCHILDREN = 1000;
// In the server's-end tests, which start everything three times over, fewer.
const GRANDCHILDREN_AT_END = 100;

describe('process faults', () => {
  test('kill: a child that ignores SIGTERM, and its grandchild that does too, end with SIGKILL',
    async () => {
      const server = await McpServer.start();
      const d = uniqueSleep('4101.');
      try {
        const { pid } = await server.spawn({
          command: `trap '' TERM; sleep ${d} & echo ready; sleep ${d}; wait`, background: true,
        });
        await server.waitOutput(pid, 'ready');
        await until(() => sleeps(d).length === 2, 5000, 'both sleeps to start');
        const term = await server.kill(pid);
        assert.equal(term.status, 'running');
        assert.equal(sleeps(d).length, 2, 'SIGTERM was ignored by both');
        const k = await server.kill(pid, 'SIGKILL');
        assert.equal(k.status, 'terminated');
        assert.equal(k.signal, 'SIGKILL');
        await until(() => sleeps(d).length === 0, 5000, 'the grandchild to end with its group');
        await until(() => zombieChildren(server.pid).length === 0, 5000,
          'no unreaped child of the server');
        assert.ok((await server.tool('ps', {})).processes.some((p) => p.pid === pid));
      } finally {
        await server.close();
        killAll([d]);
      }
    });

  test(`a child that forks ${GRANDCHILDREN} grandchildren and exits: they all go with it`,
    async () => {
      const server = await McpServer.start();
      const d = uniqueSleep('4102.');
      try {
        const r = await server.spawn({
          command: `i=0; while [ $i -lt ${GRANDCHILDREN} ]; do sleep ${d} & i=$((i+1)); done; ` +
            'echo forked',
          timeoutMs: 60000,
        });
        assert.equal(r.status, 'terminated', JSON.stringify(r));
        assert.equal(r.exitCode, 0);
        assert.match(r.stdout, /forked/);
        assert.equal(r.stderr, '', 'every fork succeeded');
        await until(() => sleeps(d).length === 0, 10000, `the ${GRANDCHILDREN} sleeps to end`);
        await until(() => zombieChildren(server.pid).length === 0, 5000,
          'no unreaped child of the server');
        // The server goes on as before.
        const again = await server.spawn({ command: 'echo still here' });
        assert.equal(again.stdout, 'still here\n');
      } finally {
        await server.close();
        killAll([d]);
      }
    });

  for (const tty of [false, true]) {
    test(`a child that closes its output but keeps running stays running${tty ? ' (tty)' : ''}`,
      async () => {
        const server = await McpServer.start();
        const d = uniqueSleep('4103.');
        try {
          const { pid } = await server.spawn({
            command: `echo before; exec >&- 2>&-; sleep ${d}`, background: true, tty,
          });
          await server.waitOutput(pid, 'before');
          await until(() => sleeps(d).length === 1, 5000, 'the sleep to start');
          // The end of its output is not its end.
          const w = await server.tool('wait', { id: pid, until: { exit: true }, timeoutMs: 1500 });
          assert.equal(w.status, 'timeout', JSON.stringify(w));
          assert.equal(w.running, true);
          assert.equal((await server.psEntry(pid)).status, 'running');
          const k = await server.kill(pid);
          assert.equal(k.status, 'terminated');
          assert.equal(k.signal, 'SIGTERM');
          assert.equal(sleeps(d).length, 0);
          const out = await server.stdout(pid);
          assert.match(out.stdout, /before/);
        } finally {
          await server.close();
          killAll([d]);
        }
      });
  }

  test(CATCHES_DAEMONS ?
    'a daemon (double fork, setsid) dies when the command that started it ends' :
    'a daemon (double fork, setsid) outlives the command that started it', async () => {
    const server = await McpServer.start();
    const d = uniqueSleep('4104.');
    try {
      const r = await server.spawn({ command: daemonize(d) });
      assert.equal(r.status, 'terminated', JSON.stringify(r));
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, 'forked\n');
      if (CATCHES_DAEMONS) {
        await until(() => sleeps(d).length === 0, 5000, 'the daemon to be killed');
      } else {
        await until(() => sleeps(d).length === 1, 5000, 'the daemon to run');
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.equal(sleeps(d).length, 1, 'the daemon still runs after its command ended');
      }
    } finally {
      await server.close();
      killAll([d]);
    }
  });

  test(CATCHES_DAEMONS ?
    'a daemon started by a running command is killed with it, not before' :
    'a daemon started by a running command escapes kill', async () => {
    const server = await McpServer.start();
    const d = uniqueSleep('4105.');
    const main = uniqueSleep('4106.');
    try {
      const { pid } = await server.spawn({
        command: `${daemonize(d)}; exec sleep ${main}`, background: true,
      });
      await server.waitOutput(pid, 'forked');
      await until(() => sleeps(d).length === 1 && sleeps(main).length === 1, 5000,
        'the daemon and the command to run');
      const k = await server.kill(pid);
      assert.equal(k.status, 'terminated');
      assert.equal(sleeps(main).length, 0);
      if (CATCHES_DAEMONS) {
        await until(() => sleeps(d).length === 0, 5000, 'the daemon to be killed');
      } else {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.equal(sleeps(d).length, 1, 'the daemon left the process group that kill signals');
      }
    } finally {
      await server.close();
      killAll([d, main]);
    }
  });

  // Every fault at once in one server, then the server ends in each of the three ways.
  for (const end of ['end of input', 'SIGTERM', 'SIGKILL']) {
    test(`when the server ends by ${end}, no faulty child nor anything it started survives`,
      async () => {
        const raw = await RawServer.start();
        // Once the server is gone a late write fails with EPIPE: not this test's concern.
        raw.proc.stdin.on('error', () => {});
        const ignoresTerm = uniqueSleep('4111.');
        const many = uniqueSleep('4112.');
        const closed = uniqueSleep('4113.');
        const daemon = uniqueSleep('4114.');
        const daemonParent = uniqueSleep('4115.');
        const all = [ignoresTerm, many, closed, daemon, daemonParent];
        try {
          await raw.initialize();
          const commands = [
            `trap '' TERM; sleep ${ignoresTerm} & sleep ${ignoresTerm}; wait`,
            `i=0; while [ $i -lt ${GRANDCHILDREN_AT_END} ]; do sleep ${many} & i=$((i+1)); done; ` +
              'wait',
            `exec >&- 2>&-; sleep ${closed}`,
            `${daemonize(daemon)}; exec sleep ${daemonParent}`,
          ];
          for (const command of commands) {
            const response = await raw.request('tools/call',
              { name: 'spawn', arguments: { command, background: true } }, 10000);
            assert.equal(response.error, undefined, JSON.stringify(response.error));
            assert.notEqual(response.result.isError, true, JSON.stringify(response.result));
          }
          const expected = [2, GRANDCHILDREN_AT_END, 1, 1, 1];
          await until((seen) => {
            const counts = sleepCounts(all);
            seen(counts);
            return counts.every((n, i) => n === expected[i]);
          }, 20000, 'every process to start', 200);
          const started = Date.now();
          if (end === 'end of input') raw.proc.stdin.end();
          else raw.proc.kill(end);
          const exit = await raw.waitExit(15000);
          if (end === 'SIGKILL') assert.equal(exit.signal, 'SIGKILL');
          else assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}${raw.stderrTail()}`);
          // The ladder waits kill_grace_ms (2 s) for the child that ignores SIGTERM.
          if (end !== 'SIGKILL') assert.ok(Date.now() - started < 12000);
          const caught = CATCHES_DAEMONS ? all : all.filter((d) => d !== daemon);
          await until((seen) => {
            const counts = sleepCounts(caught);
            seen(counts);
            return counts.every((n) => n === 0);
          }, 10000, 'every process of the server to end', 200);
          if (!CATCHES_DAEMONS) assert.equal(sleeps(daemon).length, 1, 'the daemon escaped');
        } finally {
          await raw.close();
          killAll(all);
        }
      });
  }
});
