// An independent client for tests/mcp/test_mcp_client_schemas.py: the TypeScript SDK's Client
// over stdio. It lists the tools (the SDK parses every tool definition and compiles each
// outputSchema with its own Ajv validator), then makes the given calls in order; callTool
// checks each result's structuredContent against the tool's outputSchema and throws if it
// does not match. In arguments, "$first_hit_id" stands for the id of the first hit of the
// latest search and "$job_id" for the latest job_id a tool returned.
//
// Usage: node sdk-client.mjs '<json {command, args, env, calls: [[tool, args], ...]}>'
// Prints one JSON object: {tools: [{name, title, inputSchema, outputSchema}], calls: [...]}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const spec = JSON.parse(process.argv[2]);
const transport = new StdioClientTransport({
  command: spec.command,
  args: spec.args,
  env: spec.env,
  stderr: "ignore",
});
const client = new Client({ name: "retrieval-mcp-ts-check", version: "1.0.0" });
await client.connect(transport);

const { tools } = await client.listTools();
const calls = [];
let firstHitId = null;
let jobId = null;
for (const [name, rawArgs] of spec.calls) {
  const args = JSON.parse(
    JSON.stringify(rawArgs)
      .replaceAll("$first_hit_id", firstHitId ?? "")
      .replaceAll("$job_id", jobId ?? ""),
  );
  try {
    const result = await client.callTool({ name, arguments: args });
    const hits = result.structuredContent?.hits;
    if (Array.isArray(hits) && hits.length > 0) firstHitId = hits[0].id;
    if (typeof result.structuredContent?.job_id === "string") jobId = result.structuredContent.job_id;
    calls.push({
      name,
      isError: Boolean(result.isError),
      text: result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n"),
      structuredContent: result.structuredContent ?? null,
    });
  } catch (error) {
    calls.push({ name, thrown: String(error?.message ?? error) });
  }
}
await client.close();
process.stdout.write(
  JSON.stringify({
    tools: tools.map((t) => ({
      name: t.name,
      title: t.title ?? null,
      inputSchema: t.inputSchema,
      outputSchema: t.outputSchema ?? null,
    })),
    calls,
  }),
);
