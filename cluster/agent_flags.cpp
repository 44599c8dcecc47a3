// cluster/agent_flags.cpp — see agent_flags.hpp.
#include "cluster/agent_flags.hpp"

namespace yard::cluster {

void add_agent_flags(CLI::App& app, actors::worker_config& wc) {
  app.add_option_function<std::string>(
         "--tool-call-format",
         [&wc](const std::string& f) { wc.tool_call_format = backends::chat::parse_tool_call_format(f); },
         "how tool calls are read from model output: llama3_json | hermes | mistral | none "
         "(default: the model family's; hermes for the mock)")
      ->check(CLI::IsMember({"llama3_json", "hermes", "mistral", "none"}));
}

}  // namespace yard::cluster
