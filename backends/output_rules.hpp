// backends/output_rules.hpp — what a request's output must look like, decided once at admission.
//
// Owns: turning a generate_request's response_format, tools and tool_choice
// into the engine_request's output constraint and tool-call format:
//   - response_format json_object / json_schema: a JSON grammar constrains
//     every token (backends/structured), so the output always parses;
//   - tools with tool_choice "required" or a named function: the output is
//     forced to be one call in the tool-call format (Hermes
//     "<tool_call>\n{"name", "arguments"}\n</tool_call>", Llama 3 JSON
//     {"name", "parameters"}, Mistral "[TOOL_CALLS][{"name", "arguments"}]")
//     with the arguments constrained by the function's parameter schema;
//   - tools with "auto" (the default): the output is free and parsed for calls;
//   - "none" or no tools: neither.
// A forced call wins over response_format. An engine that constrains upstream
// (an external engine's server) gets the same decision as a JSON schema.
// Must not touch: sampling, scheduling, the wire.
// Thread-safety: pure functions; the constraint returned belongs to one request.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/sampling/output_constraint.hpp"
#include "backends/structured/token_trie.hpp"
#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends {

struct output_rules {
  std::shared_ptr<output_constraint> constraint;    // null: free output
  std::optional<chat::tool_call_format> tool_format;  // parse tool calls in this format
  // output_rules_upstream only: the JSON schema the whole output must follow, for the
  // engine's server to enforce (null: free output).
  std::optional<std::string> upstream_schema;
};

// `vocab` is asked for only when the output is constrained (an engine
// without one refuses that with errc::unsupported); `format`: the
// deployment's tool-call format. A schema that cannot be compiled is
// errc::bad_request naming the field.
using vocabulary_source = std::function<std::shared_ptr<const structured::token_vocabulary>()>;
result<output_rules> output_rules_for(const msg::generate_request& r, const vocabulary_source& vocab,
                                      chat::tool_call_format format);

// The same rules for an engine whose server constrains the output itself from
// a JSON schema (backends/external): the constraint becomes upstream_schema.
// A forced call whose format frames the JSON with text (Hermes, Mistral) cannot
// be put as a bare schema: errc::unsupported, saying what would work.
result<output_rules> output_rules_upstream(const msg::generate_request& r, chat::tool_call_format format);

}  // namespace yard::backends
