// backends/native/native_prompt_tokenizer.cpp — see native_prompt_tokenizer.hpp.
#include "backends/native/native_prompt_tokenizer.hpp"

#include <filesystem>

namespace yard::backends {

result<native_prompt_tokenizer> native_prompt_tokenizer::open(const std::string& model_dir, bool add_bos) {
  const auto path = (std::filesystem::path(model_dir) / "tokenizer.json").string();
  auto tok = native::tokenizer::load(path);
  if (!tok) return error{tok.err().code, path + ": " + tok.err().message};
  native_prompt_tokenizer t;
  t.tok_ = std::move(*tok);
  t.family_ = native::detect_chat_family(t.tok_, native::read_chat_template(model_dir));
  t.add_bos_ = add_bos;
  t.model_name_ = std::filesystem::path(model_dir).filename().string();
  if (t.model_name_.empty()) t.model_name_ = std::filesystem::path(model_dir).parent_path().filename().string();
  return t;
}

result<std::vector<token_id>> native_prompt_tokenizer::tokenize(std::string_view text) const {
  auto ids = tok_.encode(text, true, add_bos_);
  return std::vector<token_id>(ids.begin(), ids.end());
}

result<std::vector<token_id>> native_prompt_tokenizer::apply_chat_template(const std::vector<msg::chat_message>& messages) const {
  auto ids = tok_.encode(native::render_chat(family_, messages), true, false);
  return std::vector<token_id>(ids.begin(), ids.end());
}

}  // namespace yard::backends
