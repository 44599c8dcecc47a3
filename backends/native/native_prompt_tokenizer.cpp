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
  auto tmpl = chat::chat_template_renderer::load(model_dir);
  if (!tmpl) return tmpl.err();
  t.template_ = std::move(*tmpl);
  t.family_ = native::detect_chat_family(t.tok_, t.template_ ? t.template_->source() : std::string());
  t.add_bos_ = add_bos;
  t.model_name_ = std::filesystem::path(model_dir).filename().string();
  if (t.model_name_.empty()) t.model_name_ = std::filesystem::path(model_dir).parent_path().filename().string();
  return t;
}

result<std::vector<token_id>> native_prompt_tokenizer::tokenize(std::string_view text) const {
  auto ids = tok_.encode(text, true, add_bos_);
  return std::vector<token_id>(ids.begin(), ids.end());
}

result<std::vector<token_id>> native_prompt_tokenizer::apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                                          const msg::json_value* tools) const {
  std::string text;
  if (template_) {
    auto r = template_->render(messages, tools);
    if (!r) return r.err();
    text = std::move(*r);
  } else if (family_ == native::chat_family::plain) {
    text = chat::render_plain_chat(messages, tools);
  } else {
    text = native::render_chat(family_, messages);  // built-in families: tools are not shown to the model
  }
  // Special tokens in the rendered text are parsed; the template wrote any BOS itself.
  auto ids = tok_.encode(text, true, false);
  return std::vector<token_id>(ids.begin(), ids.end());
}

}  // namespace yard::backends
