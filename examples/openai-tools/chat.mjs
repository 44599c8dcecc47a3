// Tools and structured output with the official `openai` npm package, pointed
// at Switchyard's OpenAI-compatible API. Nothing Switchyard-specific except
// the base URL and the optional agent hints (extra body fields).
//
// Environment: OPENAI_BASE_URL (default http://127.0.0.1:8000/v1),
// OPENAI_API_KEY (any value unless the server runs with --api-keys),
// MODEL (default "mock"). Exit code 0 = every step checked out.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1:8000/v1",
  apiKey: process.env.OPENAI_API_KEY ?? "none",
});
const model = process.env.MODEL ?? "mock";
const check = (ok, what) => { if (!ok) throw new Error(`check failed: ${what}`); };

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 24 }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
}];
const messages = [{ role: "user", content: "What is the weather in Paris?" }];

// 1. A forced tool call, whole response. Agent hints ride as extra body fields.
const r1 = await client.chat.completions.create({
  model, messages, tools, tool_choice: "required", max_tokens: 96,
  // @ts-expect-error: Switchyard extensions
  priority: 5, latency_class: "interactive", session_id: "openai-demo",
});
const c1 = r1.choices[0];
check(c1.finish_reason === "tool_calls", `finish_reason tool_calls (got ${c1.finish_reason})`);
const call = c1.message.tool_calls[0];
const args = JSON.parse(call.function.arguments);
check(typeof args.city === "string" && ["celsius", "fahrenheit"].includes(args.unit), "arguments follow the schema");
console.log(`tool call: ${call.id} ${call.function.name}(${call.function.arguments})`);

// 2. The same, streamed: tool_calls deltas assembled by index.
const stream = await client.chat.completions.create({
  model, messages, tools, tool_choice: { type: "function", function: { name: "get_weather" } }, max_tokens: 96, stream: true,
});
const streamed = [];
let finish = null;
for await (const chunk of stream) {
  const ch = chunk.choices[0];
  if (!ch) continue;
  for (const d of ch.delta.tool_calls ?? []) {
    streamed[d.index] ??= { id: "", name: "", arguments: "" };
    if (d.id) streamed[d.index].id = d.id;
    if (d.function?.name) streamed[d.index].name = d.function.name;
    streamed[d.index].arguments += d.function?.arguments ?? "";
  }
  finish = ch.finish_reason ?? finish;
}
check(finish === "tool_calls" && streamed[0]?.name === "get_weather", "streamed tool call");
JSON.parse(streamed[0].arguments);
console.log(`streamed tool call: ${streamed[0].id} ${streamed[0].name}(${streamed[0].arguments})`);

// 3. The tool's answer goes back; the model answers in text.
messages.push(c1.message);
messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperature: 18, unit: args.unit }) });
const r3 = await client.chat.completions.create({ model, messages, tools, max_tokens: 16 });
console.log(`answer (${r3.choices[0].finish_reason}): ${r3.choices[0].message.content}`);

// 4. Structured output: a JSON schema the reply must follow.
const r4 = await client.chat.completions.create({
  model, max_tokens: 200,
  messages: [{ role: "user", content: "Describe a city as JSON." }],
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "city", strict: true,
      schema: {
        type: "object",
        properties: {
          name: { type: "string", maxLength: 20 },
          population: { type: "integer" },
          districts: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 },
          capital: { type: "boolean" },
        },
        required: ["name", "population", "districts", "capital"],
        additionalProperties: false,
      },
    },
  },
});
const city = JSON.parse(r4.choices[0].message.content);
check(typeof city.name === "string" && Number.isInteger(city.population) && Array.isArray(city.districts) &&
      typeof city.capital === "boolean", "the reply follows the schema");
console.log(`json_schema reply: ${r4.choices[0].message.content}`);

// 5. JSON mode.
const r5 = await client.chat.completions.create({
  model, max_tokens: 64, messages: [{ role: "user", content: "Any JSON object." }], response_format: { type: "json_object" },
});
check(typeof JSON.parse(r5.choices[0].message.content) === "object", "json_object reply parses");
console.log(`json_object reply: ${r5.choices[0].message.content}`);
