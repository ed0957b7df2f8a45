// Processes as MCP resources (docs/agent-tools.md): process://{id}/stdout, stderr, screen and
// info, listed, templated and read; subscriptions that send resources/updated (coalesced) and
// the exit notice as notifications/message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import { cleanup, waitExit, waitFor } from './lib/agent.mjs';
import { ID_PREFIX, sleep, until, useServer } from './lib/server.mjs';

describe('resources', () => {
  const srv = useServer({ before, after });
  const updates = [];   // {uri, at}
  const messages = [];  // params of notifications/message

  before(async () => {
    srv().client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
      updates.push({ uri: notification.params.uri, at: Date.now() });
    });
    srv().client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
      messages.push(notification.params);
    });
    await srv().client.setLoggingLevel('info');
  });

  const updatesOf = (uri) => updates.filter((u) => u.uri === uri);
  const exitNoticeOf = (id) => messages.find((m) => m.data?.event === 'exit' && m.data?.id === id);

  test('the server advertises resources with subscriptions, and logging', async () => {
    const caps = srv().client.getServerCapabilities();
    assert.equal(caps.resources?.subscribe, true, JSON.stringify(caps));
    assert.ok(caps.logging, JSON.stringify(caps));
    assert.ok(caps.tools, JSON.stringify(caps));
    const { tools } = await srv().client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(),
      ['kill', 'ps', 'resize', 'spawn', 'stdin', 'stdout', 'wait']);
  });

  test('a subscription receives updates, then the exit notice', async () => {
    const { pid } = await srv().spawn({
      command: 'read go; for i in 1 2 3; do echo $i; sleep 0.2; done; exit 3', background: true,
    });
    const uri = `process://${pid}/stdout`;
    try {
      await srv().client.subscribeResource({ uri });
      await srv().tool('stdin', { id: pid, input: '\\n' });
      await until(() => updatesOf(uri).length >= 1 && exitNoticeOf(pid), 15000,
        `an update of ${uri} and the exit notice of ${pid}`);
      const notice = exitNoticeOf(pid);
      assert.equal(notice.level, 'info');
      assert.equal(notice.data.event, 'exit');
      assert.equal(notice.data.id, pid);
      assert.equal(notice.data.exitCode, 3);
      assert.equal(notice.data.signal ?? null, null);

      const read = await srv().client.readResource({ uri });
      assert.equal(read.contents.length, 1);
      assert.equal(read.contents[0].uri, uri);
      assert.equal(read.contents[0].text, '1\n2\n3\n');
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('a killed process: the exit notice names the signal', async () => {
    const { pid } = await srv().spawn({ command: 'exec sleep 30', background: true });
    await srv().kill(pid, 'SIGKILL');
    await until(() => exitNoticeOf(pid), 10000, `the exit notice of ${pid}`);
    const notice = exitNoticeOf(pid);
    assert.equal(notice.data.signal, 'SIGKILL');
    assert.equal(notice.data.exitCode ?? null, null);
  });

  test('updates are coalesced to at most 4 per second per resource', async () => {
    const { pid } = await srv().spawn({
      command: 'read go; i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); sleep 0.02; ' +
        'done',
      background: true,
    });
    const uri = `process://${pid}/stdout`;
    try {
      await srv().client.subscribeResource({ uri });
      const started = Date.now();
      await srv().tool('stdin', { id: pid, input: '\\n' });
      await waitExit(srv(), pid, 30000);
      await until(() => exitNoticeOf(pid), 10000, `the exit notice of ${pid}`);
      // Let a last coalesced update arrive.
      await sleep(600);
      const mine = updatesOf(uri);
      const span = Date.now() - started;
      assert.ok(mine.length >= 2, `${mine.length} updates for 100 lines over ${span} ms`);
      assert.ok(mine.length <= span / 250 + 2,
        `${mine.length} updates in ${span} ms: more than 4 per second`);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('after unsubscribing, no more updates', async () => {
    const { pid } = await srv().spawn({
      command: 'read a; echo first; read b; echo second; exec sleep 30', background: true,
    });
    const uri = `process://${pid}/stdout`;
    try {
      await srv().client.subscribeResource({ uri });
      await srv().tool('stdin', { id: pid, input: '\\n' });
      await until(() => updatesOf(uri).length >= 1, 10000, `an update of ${uri}`);
      await srv().client.unsubscribeResource({ uri });
      await sleep(600);
      const count = updatesOf(uri).length;
      await srv().tool('stdin', { id: pid, input: '\\n' });
      const second = await waitFor(srv(), pid, { pattern: '^second$' }, { timeoutMs: 10000 });
      assert.equal(second.status, 'matched');
      await sleep(600);
      assert.equal(updatesOf(uri).length, count);
    } finally {
      await cleanup(srv(), pid);
    }
  });

  test('resources/list and templates describe the processes', async () => {
    const pipe = await srv().spawn({ command: 'echo listed' });
    const tty = await srv().spawn({ command: 'exec sleep 30', tty: true, background: true });
    try {
      const { resources } = await srv().client.listResources();
      const uris = resources.map((r) => r.uri);
      for (const kind of ['stdout', 'stderr', 'info']) {
        assert.ok(uris.includes(`process://${pipe.pid}/${kind}`), `${kind} of ${pipe.pid}`);
      }
      assert.ok(!uris.includes(`process://${pipe.pid}/screen`), 'a pipe process has no screen');
      assert.ok(uris.includes(`process://${tty.pid}/screen`), 'screen of the tty process');
      assert.ok(uris.includes(`process://${tty.pid}/info`), 'info of the tty process');
      for (const r of resources) assert.equal(typeof r.name, 'string');

      const { resourceTemplates } = await srv().client.listResourceTemplates();
      const templates = resourceTemplates.map((t) => t.uriTemplate).sort();
      assert.deepEqual(templates, ['process://{id}/info', 'process://{id}/screen',
        'process://{id}/stderr', 'process://{id}/stdout']);
    } finally {
      await cleanup(srv(), tty.pid);
    }
  });

  test('info is the process as ps shows it', async () => {
    const { pid } = await srv().spawn({ command: 'echo info; exit 5' });
    await waitExit(srv(), pid);
    const read = await srv().client.readResource({ uri: `process://${pid}/info` });
    assert.equal(read.contents.length, 1);
    const info = JSON.parse(read.contents[0].text);
    assert.deepEqual(info, await srv().psEntry(pid));
    assert.equal(info.exitCode, 5);
  });

  test('stderr and screen read as text', async () => {
    const pipe = await srv().spawn({ command: 'echo on-err >&2; echo on-out' });
    await waitExit(srv(), pipe.pid);
    const err = await srv().client.readResource({ uri: `process://${pipe.pid}/stderr` });
    assert.equal(err.contents[0].text, 'on-err\n');

    const tty = await srv().spawn({
      command: "printf '\\033[1mhello-screen\\033[0m\\n'; exec sleep 30", tty: true,
      background: true,
    });
    try {
      await waitFor(srv(), tty.pid, { pattern: 'hello-screen' }, { timeoutMs: 10000 });
      const screen = await srv().client.readResource({ uri: `process://${tty.pid}/screen` });
      const text = screen.contents[0].text;
      assert.match(text, /^hello-screen\s*$/m);
      assert.ok(!text.includes('\x1b'), 'escape codes on the rendered screen');
    } finally {
      await cleanup(srv(), tty.pid);
    }
  });

  test('reading a resource of an unknown process is an error', async () => {
    // -32002: "Resource not found" in the MCP specification.
    await assert.rejects(srv().client.readResource({
      uri: `process://${ID_PREFIX}-999999/stdout`,
    }),
      (error) => error.code === -32002 && new RegExp(`${ID_PREFIX}-999999`).test(error.message));
    await assert.rejects(srv().client.readResource({ uri: 'process://nothing' }),
      (error) => error.code === -32002 || error.code === -32602);
  });
});
