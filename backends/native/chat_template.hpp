// backends/native/chat_template.hpp — chat formatting per model family.
//
// Owns: the built-in fallback for model folders without a chat template of
// their own (backends/chat/chat_template_renderer renders those): choosing a
// family from the template text or the tokenizer's special tokens and
// rendering chat messages to prompt text: ChatML (Qwen2, SmolLM:
// <|im_start|>), Llama 3 (<|start_header_id|>), Zephyr (TinyLlama chat:
// <|user|> ... </s>), Llama 2 ([INST] ... [/INST]), and a plain fallback.
// Must not touch: tokenization itself.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "backends/native/tokenizer.hpp"
#include "messages/types.hpp"

namespace yard::backends::native {

enum class chat_family { chatml, llama3, zephyr, llama2, plain };

// From tokenizer_config.json's chat_template text when given (non-empty),
// else from the tokenizer's special tokens.
chat_family detect_chat_family(const tokenizer& tok, std::string_view template_text = {});
std::string_view chat_family_name(chat_family f);

// The prompt text for `messages`, ending with the assistant's turn header.
std::string render_chat(chat_family f, const std::vector<msg::chat_message>& messages);

// Token strings that end an assistant turn in this family (added to stop ids).
std::vector<std::string> chat_end_tokens(chat_family f);

}  // namespace yard::backends::native
