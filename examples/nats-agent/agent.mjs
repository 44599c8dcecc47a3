// A tool-using conversation over NATS with the official `nats` client and
// `@msgpack/msgpack`: no HTTP, no Switchyard library.
//
// 1. Discovers the cluster with the NATS services API ($SRV.PING / INFO), the
//    way `nats micro ls` does, and finds the router's generate subject there.
// 2. Publishes a generate_request (msgpack) with `messages`, `tools` and
//    `tool_choice: "required"` and a reply inbox; token_chunk messages stream
//    back; the model's call arrives as `tool_calls` deltas and the last chunk
//    says finish_reason "tool_calls".
// 3. Runs the tool locally, sends the conversation back with the assistant's
//    call and a `role: "tool"` message, and prints the final answer.
//
// Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_USER,
// NATS_PASSWORD or NATS_PASSWORD_FILE, NATS_INBOX_PREFIX (yard up prints
// them), YARD_NAMESPACE (default "default"). Exit code 0 = the conversation
// completed with a parsed tool call.
import { connect, createInbox } from "nats";
import { encode, decode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";

const ns = process.env.YARD_NAMESPACE ?? "default";
const user = process.env.NATS_USER;
const pass = process.env.NATS_PASSWORD ??
  (process.env.NATS_PASSWORD_FILE ? readFileSync(process.env.NATS_PASSWORD_FILE, "utf8").trim() : undefined);
// yard's users may only receive replies under their own prefix, _INBOX_<user>.
const inboxPrefix = process.env.NATS_INBOX_PREFIX ?? (user ? `_INBOX_${user}` : "_INBOX");
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", user, pass, inboxPrefix });

// 1. Discovery through the official service client.
const svc = nc.services.client();
const found = [];
for await (const s of await svc.info()) found.push(s);
const router = found.find((s) => s.name === "yard-router" && s.metadata?.namespace === ns);
if (!router) throw new Error(`no yard-router in namespace ${ns}; services seen: ${found.map((s) => s.name)}`);
const generate = router.endpoints.find((e) => e.name === "generate").subject;
console.log(`services: ${found.map((s) => `${s.name}/${s.id}`).join(", ")}`);
console.log(`router generate subject: ${generate}`);

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 24 }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
    },
  },
}];

// One generate_request; resolves with { text, calls, finish } once the last chunk arrives.
async function generate_once(request) {
  const inbox = createInbox(inboxPrefix);
  const sub = nc.subscribe(inbox);
  nc.publish(generate, encode(request), { reply: inbox });
  let text = "";
  const calls = [];
  for await (const m of sub) {
    const c = decode(m.data);
    if (c.error) throw new Error(`error ${c.error.code}: ${c.error.message}`);
    text += c.text ?? "";
    for (const d of c.tool_calls ?? []) {
      calls[d.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
      if (d.id) calls[d.index].id = d.id;
      if (d.name) calls[d.index].function.name = d.name;
      calls[d.index].function.arguments += d.arguments ?? "";
    }
    if (c.finish_reason) {
      sub.unsubscribe();
      return { text, calls, finish: c.finish_reason };
    }
  }
  throw new Error("the reply stream ended without a finish_reason");
}

const messages = [
  { role: "system", content: "You are a weather assistant." },
  { role: "user", content: "What is the weather in Paris?" },
];
const first = await generate_once({ messages, tools, tool_choice: "required", max_tokens: 96, stream: true,
                                    latency_class: "interactive", session_id: "nats-agent-demo" });
console.log(`finish_reason: ${first.finish}`);
if (first.finish !== "tool_calls" || first.calls.length === 0) throw new Error(`expected a tool call, got ${JSON.stringify(first)}`);
const call = first.calls[0];
const args = JSON.parse(call.function.arguments);  // constrained decoding: always valid JSON
console.log(`tool call: ${call.id} ${call.function.name}(${JSON.stringify(args)})`);

// The tool runs here; its answer goes back as a role "tool" message.
const result = { city: args.city, temperature: 18, unit: args.unit };
messages.push({ role: "assistant", content: "", tool_calls: [call] });
messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify(result) });
const answer = await generate_once({ messages, tools, tool_choice: "none", max_tokens: 24, stream: true,
                                     session_id: "nats-agent-demo" });
console.log(`answer (${answer.finish}): ${answer.text}`);
await nc.drain();
