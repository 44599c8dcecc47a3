#include "backends/native/chat_template.hpp"

namespace yard::backends::native {

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

chat_family detect_chat_family(const tokenizer& tok, std::string_view tmpl) {
  if (!tmpl.empty()) {
    if (tmpl.find("<|im_start|>") != std::string_view::npos) return chat_family::chatml;
    if (tmpl.find("<|start_header_id|>") != std::string_view::npos) return chat_family::llama3;
    if (tmpl.find("<|user|>") != std::string_view::npos) return chat_family::zephyr;
    if (tmpl.find("[INST]") != std::string_view::npos) return chat_family::llama2;
  }
  if (tok.find("<|im_start|>") && tok.find("<|im_end|>")) return chat_family::chatml;
  if (tok.find("<|start_header_id|>") && tok.find("<|eot_id|>")) return chat_family::llama3;
  if (tok.find("<|user|>") && tok.find("</s>")) return chat_family::zephyr;
  return chat_family::plain;
}

std::string_view chat_family_name(chat_family f) {
  switch (f) {
    case chat_family::chatml: return "chatml";
    case chat_family::llama3: return "llama3";
    case chat_family::zephyr: return "zephyr";
    case chat_family::llama2: return "llama2";
    case chat_family::plain: return "plain";
  }
  return "?";
}

std::string render_chat(chat_family f, const std::vector<msg::chat_message>& messages) {
  std::string s;
  switch (f) {
    case chat_family::chatml:
      for (const auto& m : messages) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      s += "<|im_start|>assistant\n";
      break;
    case chat_family::llama3:
      s = "<|begin_of_text|>";
      for (const auto& m : messages)
        s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case chat_family::zephyr:
      for (const auto& m : messages) s += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      s += "<|assistant|>\n";
      break;
    case chat_family::llama2: {
      // <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST]
      std::string sys;
      for (const auto& m : messages) {
        if (m.role == "system") { sys = m.content; continue; }
        if (m.role == "assistant") {
          s += " " + trim(m.content) + " </s>";
          continue;
        }
        std::string content = trim(m.content);
        if (!sys.empty()) {
          content = "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content;
          sys.clear();
        }
        s += "<s>[INST] " + content + " [/INST]";
      }
      break;
    }
    case chat_family::plain:
      for (const auto& m : messages) s += "<|" + m.role + "|>\n" + m.content + "\n";
      s += "<|assistant|>\n";
      break;
  }
  return s;
}

std::vector<std::string> chat_end_tokens(chat_family f) {
  switch (f) {
    case chat_family::chatml: return {"<|im_end|>"};
    case chat_family::llama3: return {"<|eot_id|>"};
    case chat_family::zephyr: return {"</s>"};
    case chat_family::llama2: return {"</s>"};
    case chat_family::plain: return {};
  }
  return {};
}

}  // namespace yard::backends::native
