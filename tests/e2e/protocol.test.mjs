// MCP protocol conformance as a client sees it: version negotiation, ping, the tool list,
// logging, result shapes, errors, and a stdout that carries nothing but MCP messages.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

import { child, ID_PREFIX, RawServer, until, useServer } from './lib/server.mjs';

const SUPPORTED_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
const TOOL_NAMES = ['kill', 'ps', 'spawn', 'stdin', 'stdout'];

describe('initialize', () => {
  for (const version of SUPPORTED_VERSIONS) {
    test(`a client asking for ${version} gets ${version}`, async () => {
      const raw = await RawServer.start();
      try {
        const response = await raw.initialize(version);
        assert.equal(response.error, undefined, JSON.stringify(response.error));
        assert.equal(response.jsonrpc, '2.0');
        assert.equal(response.result.protocolVersion, version);
        assert.ok(response.result.capabilities.tools, 'capabilities.tools missing');
        assert.ok(response.result.capabilities.logging, 'capabilities.logging missing');
        assert.equal(typeof response.result.serverInfo?.name, 'string');
        assert.equal(typeof response.result.serverInfo?.version, 'string');
        // The session works after the handshake.
        const listed = await raw.request('tools/list', {});
        assert.equal(listed.error, undefined, JSON.stringify(listed.error));
        const names = listed.result.tools.map((t) => t.name);
        for (const name of TOOL_NAMES) assert.ok(names.includes(name), `${name} not listed`);
      } finally {
        await raw.close();
      }
    });
  }

  test('a client asking for an unknown version gets the latest, 2025-11-25', async () => {
    const raw = await RawServer.start();
    try {
      const response = await raw.initialize('1999-01-01');
      assert.equal(response.error, undefined, JSON.stringify(response.error));
      assert.equal(response.result.protocolVersion, '2025-11-25');
    } finally {
      await raw.close();
    }
  });
});

describe('with the official client', () => {
  const srv = useServer({ before, after });

  test('the server reports tools and logging capabilities and its name', () => {
    const caps = srv().client.getServerCapabilities();
    assert.ok(caps?.tools, 'capabilities.tools missing');
    assert.ok(caps?.logging, 'capabilities.logging missing');
    const info = srv().client.getServerVersion();
    assert.equal(typeof info?.name, 'string');
    assert.ok(info.name.length > 0);
  });

  test('ping answers with an empty result', async () => {
    assert.deepEqual(await srv().client.ping(), {});
  });

  // The five tools of the original server; the server may offer more (docs/agent-tools.md),
  // which must be described as fully.
  test('tools/list has spawn, ps, stdin, stdout and kill, every tool fully described', async () => {
    const { tools } = await srv().client.listTools();
    const names = tools.map((t) => t.name);
    for (const name of TOOL_NAMES) assert.ok(names.includes(name), `${name} not listed: ${names}`);
    assert.equal(new Set(names).size, names.length, `duplicate tool names: ${names}`);
    for (const tool of tools) {
      assert.equal(typeof tool.description, 'string', `${tool.name}: description`);
      assert.ok(tool.description.length > 10, `${tool.name}: description too short`);
      assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema`);
      assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: outputSchema`);
      assert.ok(tool.annotations && typeof tool.annotations === 'object',
        `${tool.name}: annotations`);
      assert.ok(Object.keys(tool.annotations).length > 0, `${tool.name}: empty annotations`);
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    const props = (name) => Object.keys(byName[name].inputSchema.properties ?? {}).sort();
    const required = (name) => [...(byName[name].inputSchema.required ?? [])].sort();
    for (const p of ['command', 'cwd', 'env', 'tty', 'background', 'timeoutMs']) {
      assert.ok(props('spawn').includes(p), `spawn input lacks ${p}`);
    }
    assert.deepEqual(required('spawn'), ['command']);
    assert.deepEqual(required('stdin'), ['id', 'input']);
    assert.ok(props('stdout').includes('lines'), 'stdout input lacks lines');
    assert.deepEqual(required('stdout'), ['id']);
    assert.ok(props('kill').includes('signal'), 'kill input lacks signal');
    assert.deepEqual(required('kill'), ['id']);
    assert.deepEqual(required('ps'), []);
  });

  test('logging/setLevel is accepted for every level', async () => {
    for (const level of ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert',
      'emergency']) {
      assert.deepEqual(await srv().client.setLoggingLevel(level), {}, level);
    }
    await srv().client.setLoggingLevel('info');
  });

  test('a tool result has structuredContent and a text content with the same JSON', async () => {
    const result = await srv().client.callTool({ name: 'spawn', arguments: { command: 'echo hi' } });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.ok(result.structuredContent, 'structuredContent missing');
    const text = result.content.find((c) => c.type === 'text');
    assert.ok(text, 'text content missing');
    assert.deepEqual(JSON.parse(text.text), result.structuredContent);
    assert.equal(result.structuredContent.stdout, 'hi\n');

    const ps = await srv().client.callTool({ name: 'ps', arguments: {} });
    assert.ok(Array.isArray(ps.structuredContent?.processes), JSON.stringify(ps));
    assert.deepEqual(JSON.parse(ps.content.find((c) => c.type === 'text').text),
      ps.structuredContent);
  });

  test('an unknown tool is a JSON-RPC error -32602', async () => {
    await assert.rejects(
      srv().client.callTool({ name: 'no_such_tool', arguments: {} }),
      (error) => {
        assert.ok(error instanceof McpError, String(error));
        assert.equal(error.code, ErrorCode.InvalidParams);
        assert.equal(error.code, -32602);
        return true;
      });
  });

  describe('bad arguments are tool errors that name the problem', () => {
    const cases = [
      ['spawn without command', 'spawn', {}, /command/],
      ['spawn with a numeric command', 'spawn', { command: 42 }, /command/],
      ['spawn with a negative timeoutMs', 'spawn', { command: 'true', timeoutMs: -5 },
        /timeoutMs/],
      ['spawn with a string timeoutMs', 'spawn', { command: 'true', timeoutMs: 'soon' },
        /timeoutMs/],
      ['spawn with a non-boolean tty', 'spawn', { command: 'true', tty: 'yes' }, /tty/],
      ['spawn with env that is not an object', 'spawn', { command: 'true', env: 'A=1' }, /env/],
      ['spawn with an object as env value', 'spawn', { command: 'true', env: { A: { b: 1 } } },
        /env/],
      ['stdout of an unknown process', 'stdout', { id: `${ID_PREFIX}-987654` }, new RegExp(`${ID_PREFIX}-987654`)],
      ['stdout without id', 'stdout', {}, /\bid\b/],
      ['stdout with lines of the wrong type', 'stdout', { id: '$ID', lines: 'many' }, /lines/],
      ['stdout with negative lines', 'stdout', { id: '$ID', lines: -3 }, /lines/],
      ['stdin of an unknown process', 'stdin', { id: `${ID_PREFIX}-987654`, input: 'x' }, new RegExp(`${ID_PREFIX}-987654`)],
      ['stdin without input', 'stdin', { id: '$ID' }, /input/],
      ['stdin with a numeric input', 'stdin', { id: '$ID', input: 7 }, /input/],
      ['kill of an unknown process', 'kill', { id: `${ID_PREFIX}-987654` }, new RegExp(`${ID_PREFIX}-987654`)],
    ];
    // A real process for the cases that need a valid id ('$ID').
    let id;
    before(async () => {
      id = (await srv().spawn({ command: 'echo ok' })).pid;
    });
    for (const [title, name, args, pattern] of cases) {
      test(title, async () => {
        const real = Object.fromEntries(Object.entries(args)
          .map(([k, v]) => [k, v === '$ID' ? id : v]));
        const message = await srv().toolError(name, real);
        assert.match(message, pattern);
      });
    }

    test('kill with an unknown signal', async () => {
      const { pid } = await srv().spawn({ command: 'sleep 30', background: true });
      try {
        const message = await srv().toolError('kill', { id: pid, signal: 'SIGNOPE' });
        assert.match(message, /signal|SIGNOPE/i);
        const numeric = await srv().toolError('kill', { id: pid, signal: 999 });
        assert.match(numeric, /signal|999/i);
        assert.equal((await srv().psEntry(pid)).status, 'running');
      } finally {
        await srv().kill(pid, 'SIGKILL');
      }
    });
  });

  test('the session survives heavy output on stdout and stderr of a child', async () => {
    const result = await srv().spawn({
      command: `${child()} spam 2000000; yes stderr-line | head -c 1000000 >&2; echo end`,
      timeoutMs: 30000,
    });
    assert.equal(result.status, 'terminated');
    assert.equal(result.exitCode, 0);
    assert.ok(result.stdout.endsWith('end\n'), result.stdout.slice(-200));
    assert.deepEqual(await srv().client.ping(), {});
    const ps = await srv().ps();
    assert.ok(ps.some((p) => p.pid === result.pid));
  });
});

describe('raw JSON-RPC', () => {
  test('a malformed line gets a -32700 parse error with id null, and the server goes on',
    async () => {
      const raw = await RawServer.start();
      try {
        const init = await raw.initialize();
        assert.equal(init.error, undefined, JSON.stringify(init.error));
        raw.sendRaw('{bad json\n');
        const parseError = await raw.waitMessage((m) => m.error?.code === -32700, 5000,
          'a -32700 parse error');
        assert.equal(parseError.jsonrpc, '2.0');
        assert.equal(parseError.id, null);
        assert.equal(typeof parseError.error.message, 'string');
        const ping = await raw.request('ping');
        assert.deepEqual(ping.result, {});
        assert.equal(raw.exited, null, 'the server exited');
      } finally {
        await raw.close();
      }
    });

  test('an unknown method is -32601; string ids are echoed; notifications get no answer',
    async () => {
      const raw = await RawServer.start();
      try {
        await raw.initialize();
        const unknown = await raw.request('no/such/method', {});
        assert.equal(unknown.error?.code, -32601, JSON.stringify(unknown));
        raw.send({ jsonrpc: '2.0', id: 'text-id-1', method: 'ping' });
        const ping = await raw.waitMessage((m) => m.id === 'text-id-1', 5000, 'the ping answer');
        assert.deepEqual(ping.result, {});
        const count = raw.messages.length;
        raw.notify('notifications/some_unknown_notification', { x: 1 });
        raw.notify('notifications/initialized');
        await raw.request('ping');
        assert.equal(raw.messages.length, count + 1, 'a notification was answered: ' +
          JSON.stringify(raw.messages.slice(count)));
      } finally {
        await raw.close();
      }
    });

  test('progress carries the request\'s own progressToken (a string here)', async () => {
    const raw = await RawServer.start();
    try {
      await raw.initialize();
      const pending = raw.request('tools/call', {
        name: 'spawn', arguments: { command: 'sleep 1.6', timeoutMs: 5000 },
        _meta: { progressToken: 'token-of-this-call' },
      }, 10000);
      const progress = await raw.waitMessage((m) => m.method === 'notifications/progress', 5000,
        'notifications/progress');
      assert.equal(progress.params.progressToken, 'token-of-this-call');
      assert.equal(typeof progress.params.progress, 'number');
      const done = await pending;
      assert.equal(done.result.structuredContent.status, 'terminated');
    } finally {
      await raw.close();
    }
  });

  test('a cancelled request gets no response, and its process keeps running', async () => {
    const raw = await RawServer.start();
    try {
      await raw.initialize();
      raw.send({ jsonrpc: '2.0', id: 'to-cancel', method: 'tools/call',
        params: { name: 'spawn', arguments: { command: 'echo cancelled-run; sleep 0.8; echo finished',
          timeoutMs: 5000 } } });
      const listed = async () => {
        const ps = await raw.request('tools/call', { name: 'ps', arguments: {} });
        return ps.result.structuredContent.processes.find((p) => p.command.includes('cancelled-run'));
      };
      const entry = await until(listed, 5000, 'the spawn to start');
      raw.notify('notifications/cancelled', { requestId: 'to-cancel', reason: 'test' });
      // The process ends on its own; by then an answer to the cancelled request would have come.
      const ended = await until(async () => {
        const out = await raw.request('tools/call', { name: 'stdout', arguments: { id: entry.pid } });
        return out.result.structuredContent.status === 'terminated' && out.result.structuredContent;
      }, 5000, 'the process to end');
      assert.equal(ended.stdout, 'cancelled-run\nfinished\n');
      await raw.request('ping');
      assert.deepEqual(raw.messages.filter((m) => m.id === 'to-cancel'), []);
    } finally {
      await raw.close();
    }
  });

  test('answers over and under PIPE_BUF, pipelined, come whole and in order', async () => {
    // Small answers may be written by the core thread itself, large ones by the writer thread;
    // neither may cut into the other, nor overtake it. Each large answer here is about 1 MB.
    const raw = await RawServer.start();
    try {
      await raw.initialize();
      const spawned = await raw.request('tools/call', {
        name: 'spawn',
        arguments: { command: "head -c 500000 /dev/zero | tr '\\0' x", timeoutMs: 20000 },
      }, 30000);
      assert.equal(spawned.error, undefined, JSON.stringify(spawned.error));
      const id = spawned.result.structuredContent.pid;
      assert.equal(spawned.result.structuredContent.exitCode, 0);
      const before = raw.messages.length;
      const pairs = 10;
      for (let i = 0; i < pairs; ++i) {
        // The ping goes out once the first bytes of the large answer are here: while the rest of
        // it is still being written.
        const started = new Promise((resolve) => raw.proc.stdout.once('data', resolve));
        raw.send({
          jsonrpc: '2.0', id: `big-${i}`, method: 'tools/call',
          params: { name: 'stdout', arguments: { id, since: { stdout: 0 }, maxBytes: 500000,
            stream: 'stdout' } },
        });
        await started;
        raw.send({ jsonrpc: '2.0', id: `small-${i}`, method: 'ping' });
        await raw.waitMessage((m) => m.id === `small-${i}` || m.unparsable !== undefined,
          30000, `the answer to ping small-${i}`);
        if (raw.messages.some((m) => m.unparsable !== undefined)) break;
      }
      const answers = raw.messages.slice(before);
      for (const message of answers) {
        assert.equal(message.unparsable, undefined,
          `a cut or mixed line on stdout: ${String(message.unparsable).slice(0, 200)}`);
      }
      const ids = answers.filter((m) => 'id' in m).map((m) => m.id);
      const expected = [];
      for (let i = 0; i < pairs; ++i) expected.push(`big-${i}`, `small-${i}`);
      assert.deepEqual(ids, expected);
      for (const message of answers) {
        assert.equal(message.error, undefined, JSON.stringify(message.error));
        if (String(message.id).startsWith('big-')) {
          assert.equal(message.result.structuredContent.stdout.length, 500000);
        }
      }
    } finally {
      await raw.close();
    }
  });

  test('every line the server writes on stdout is a JSON-RPC message, even under heavy child output',
    async () => {
      const raw = await RawServer.start();
      try {
        await raw.initialize();
        const call = await raw.request('tools/call', {
          name: 'spawn',
          arguments: {
            command: 'yes out | head -c 1000000; yes err | head -c 500000 >&2; ' +
              'printf "\\033[2J{\\"jsonrpc\\":\\"2.0\\"}\\n"; echo done',
            timeoutMs: 30000,
          },
        }, 40000);
        assert.equal(call.error, undefined, JSON.stringify(call.error));
        assert.equal(call.result.structuredContent.exitCode, 0);
        // A TTY child writes to its terminal, never to the server's stdout either.
        const ttyCall = await raw.request('tools/call', {
          name: 'spawn',
          arguments: { command: 'yes tty-line | head -c 200000; echo done', tty: true,
            timeoutMs: 30000 },
        }, 40000);
        assert.equal(ttyCall.error, undefined, JSON.stringify(ttyCall.error));
        assert.deepEqual((await raw.request('ping')).result, {});
        for (const message of raw.messages) {
          assert.equal(message.unparsable, undefined,
            `non-JSON line on stdout: ${String(message.unparsable).slice(0, 200)}`);
          assert.equal(message.jsonrpc, '2.0', JSON.stringify(message).slice(0, 200));
          assert.ok('id' in message || 'method' in message, JSON.stringify(message).slice(0, 200));
        }
      } finally {
        await raw.close();
      }
    });
});
