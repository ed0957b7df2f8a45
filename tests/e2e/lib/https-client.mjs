// A client program for https.test.mjs: the official MCP client over Streamable HTTP. It runs in
// its own process because Node reads NODE_EXTRA_CA_CERTS (the test's CA) only at start-up.
//   node https-client.mjs URL  ->  prints one JSON line: {tools, spawn} or {error}
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.argv[2]);
const client = new Client({ name: 'process-mcp-https-e2e', version: '1.0.0' },
  { capabilities: {} });
const transport = new StreamableHTTPClientTransport(url);
try {
  await client.connect(transport, { timeout: 10000 });
  const tools = (await client.listTools()).tools.map((tool) => tool.name);
  const spawn = await client.callTool({ name: 'spawn', arguments: { command: 'echo hi' } },
    undefined, { timeout: 30000 });
  await transport.terminateSession();
  await client.close();
  console.log(JSON.stringify({ tools, spawn }));
} catch (error) {
  const cause = error.cause ? ` (cause: ${error.cause.code ?? ''} ${error.cause.message})` : '';
  console.log(JSON.stringify({ error: `${error.message}${cause}` }));
  await client.close().catch(() => {});
}
