// Tokenizer: byte-level mapping, pre-tokenizer splits, BPE known vectors,
// special tokens, UTF-8 streaming, chat templates.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backends/native/chat_template.hpp"
#include "backends/native/mkmodel.hpp"
#include "backends/native/tokenizer.hpp"

namespace yard::backends::native {
namespace {

using nlohmann::json;

// A hand-written tokenizer: 256 byte tokens (ids = byte order) + fixed merges.
tokenizer handmade(const std::string& pre_regex = "") {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(static_cast<std::uint8_t>(b))] = b;
  std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ã ©"};
  int id = 256;
  for (auto& m : merges) {
    auto sp = m.find(' ');
    vocab[m.substr(0, sp) + m.substr(sp + 1)] = id++;
  }
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
            {"added_tokens", {{{"id", 300}, {"content", "<|eot|>"}, {"special", true}}}}};
  if (!pre_regex.empty())
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", pre_regex}}}, {"behavior", "Isolated"}},
                                             {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  else j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  auto t = tokenizer::parse(j.dump());
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().describe());
  return std::move(*t);
}

TEST(native_tokenizer, gpt2_byte_mapping) {
  EXPECT_EQ(byte_to_unicode(' '), "Ġ");
  EXPECT_EQ(byte_to_unicode('\n'), "Ċ");
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(byte_to_unicode(0), "Ā");
  EXPECT_EQ(byte_to_unicode(0xff), "ÿ");
  EXPECT_EQ(byte_to_unicode(0xad), "Ń");  // the soft hyphen is remapped (U+0143)
  for (int b = 0; b < 256; ++b) {
    std::uint32_t cp;
    const auto& s = byte_to_unicode(static_cast<std::uint8_t>(b));
    ASSERT_GT(utf8_decode(s, 0, cp), 0);
    std::uint8_t back;
    ASSERT_TRUE(unicode_to_byte(cp, back));
    EXPECT_EQ(back, b);
  }
}

TEST(native_tokenizer, bpe_known_vectors) {
  auto t = handmade();
  EXPECT_EQ(t.mode(), pretokenizer::gpt2);
  // "hello" -> h e l l o -> he, ll -> hell -> hello (id 259); " world" -> Ġworld (id 264)
  EXPECT_EQ(t.encode("hello world"), (std::vector<tok_id>{259, 264}));
  EXPECT_EQ(t.encode("hello"), (std::vector<tok_id>{259}));
  EXPECT_EQ(t.encode("help"), (std::vector<tok_id>{256, 'l', 'p'}));
  // é is C3 A9 = "Ã©" in byte-level form, merged to id 265.
  EXPECT_EQ(t.encode("é"), (std::vector<tok_id>{265}));
  // A 4-byte emoji without merges: its four byte tokens.
  EXPECT_EQ(t.encode("🙂"), (std::vector<tok_id>{0xf0, 0x9f, 0x99, 0x82}));
  EXPECT_EQ(t.decode(t.encode("hello world é 🙂 \n\t x")), "hello world é 🙂 \n\t x");
}

TEST(native_tokenizer, special_tokens) {
  auto t = handmade();
  EXPECT_EQ(t.encode("hello<|eot|>hello"), (std::vector<tok_id>{259, 300, 259}));
  auto plain = t.encode("<|eot|>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 300), 0);
  EXPECT_EQ(t.decode({259, 300}), "hello<|eot|>");
  EXPECT_EQ(t.decode({259, 300}, true), "hello");
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(259));
}

TEST(native_tokenizer, gpt2_pre_split) {
  auto t = handmade();
  EXPECT_EQ(t.pre_split("Hello  world it's 42!!"),
            (std::vector<std::string>{"Hello", " ", " world", " it", "'s", " 42", "!!"}));
}

TEST(native_tokenizer, llama3_pre_split) {
  const char* rx = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  auto t = handmade(rx);
  EXPECT_EQ(t.mode(), pretokenizer::llama3);
  EXPECT_EQ(t.pre_split("Hello, world! 12345 it'S\n\n  x"),
            (std::vector<std::string>{"Hello", ",", " world", "!", " ", "123", "45", " it", "'S", "\n\n", " ", " x"}));
  EXPECT_EQ(t.pre_split("東京 café"), (std::vector<std::string>{"東京", " café"}));
}

// The Unicode classes are PCRE2's, not approximations (cases seen to differ from the
// Hugging Face tokenizer before): Persian digits are \p{N}, the letterlike ℓ is \p{L},
// a Devanagari vowel sign (\p{Mc}) is not a letter.
TEST(native_tokenizer, llama3_pre_split_uses_real_unicode_classes) {
  const char* rx = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  auto t = handmade(rx);
  // ۱۲۳۴۵ (U+06F1..U+06F5): digits in groups of at most three.
  EXPECT_EQ(t.pre_split("x ۱۲۳۴۵"), (std::vector<std::string>{"x", " ", "۱۲۳", "۴۵"}));
  // ℓ (U+2113, Ll) joins the letters around it.
  EXPECT_EQ(t.pre_split("5ℓitre"), (std::vector<std::string>{"5", "ℓitre"}));
  // कि = क (Lo) + ि (U+093F, Mc): the vowel sign is not \p{L}, so it does not join.
  EXPECT_EQ(t.pre_split("कि"), (std::vector<std::string>{"क", "ि"}));
  // Invalid UTF-8: each bad byte is its own piece; the valid text around it is split as usual.
  EXPECT_EQ(t.pre_split(std::string("ab\xff cd")), (std::vector<std::string>{"ab", "\xff", " cd"}));
  // The pieces always cover the input exactly.
  std::string mixed = "Hi,\tthere!! 2024年12月 naïve — ok?\r\n";
  std::string joined;
  for (auto& p : t.pre_split(mixed)) joined += p;
  EXPECT_EQ(joined, mixed);
}

TEST(native_tokenizer, unsupported_or_broken_pre_tokenizers_fail_the_load_with_the_reason) {
  auto with_pre = [](nlohmann::json pre) {
    auto j = nlohmann::json::parse(make_tokenizer_json("llama", 0));
    j["pre_tokenizer"] = pre;
    return tokenizer::parse(j.dump());
  };
  auto bad_rx = with_pre({{"type", "Split"}, {"pattern", {{"Regex", "(\\p{L}"}}}, {"behavior", "Isolated"}});
  ASSERT_FALSE(bad_rx);
  EXPECT_NE(bad_rx.err().message.find("does not compile"), std::string::npos) << bad_rx.err().message;
  auto removed = with_pre({{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Removed"}});
  ASSERT_FALSE(removed);
  EXPECT_NE(removed.err().message.find("Removed"), std::string::npos) << removed.err().message;
  auto unknown = with_pre({{"type", "BertPreTokenizer"}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.err().message.find("BertPreTokenizer"), std::string::npos) << unknown.err().message;
  // A String pattern is a literal, not a regex; Digits splits numbers.
  auto lit = with_pre({{"type", "Sequence"},
                       {"pretokenizers",
                        {{{"type", "Split"}, {"pattern", {{"String", "."}}}, {"behavior", "Isolated"}},
                         {{"type", "Digits"}, {"individual_digits", true}}}}});
  ASSERT_TRUE(lit) << lit.err().message;
  EXPECT_EQ(lit->pre_split("a.b12"), (std::vector<std::string>{"a", ".", "b", "1", "2"}));
}

TEST(native_tokenizer, generated_tokenizer_round_trips_and_compresses) {
  auto t = tokenizer::parse(make_tokenizer_json("llama", 200));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->mode(), pretokenizer::llama3);
  std::string text = "The router sends the request to the worker. Café, 東京, Привет 🙂!\n\tdef main():";
  auto ids = t->encode(text);
  EXPECT_LT(ids.size(), text.size());  // merges compress
  EXPECT_EQ(t->decode(ids), text);
  ASSERT_TRUE(t->bos().has_value());
  EXPECT_EQ(t->encode("hi", true, true).front(), *t->bos());
  auto eot = t->find("<|eot_id|>");
  ASSERT_TRUE(eot.has_value());
  EXPECT_EQ(t->encode("a<|eot_id|>").back(), *eot);
}

TEST(native_tokenizer, utf8_stream_never_splits_characters) {
  utf8_stream s;
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.push("\x99"), "");
  EXPECT_EQ(s.push("\x82!"), "🙂!");
  EXPECT_EQ(s.push("a\xC3"), "a");
  EXPECT_EQ(s.push("\xA9"), "é");
  EXPECT_EQ(s.push("\xFF" "b"), "\xEF\xBF\xBD" "b");  // invalid byte -> U+FFFD
  EXPECT_EQ(s.push("\xE6\x9D"), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");  // unfinished at the end
  // Token-by-token streaming of multi-byte text through the generated tokenizer.
  auto t = tokenizer::parse(make_tokenizer_json("llama", 50));
  std::string text = "東京🙂 naïve";
  utf8_stream st;
  std::string all;
  for (auto id : t->encode(text)) {
    auto d = st.push(t->token_bytes(id));
    std::size_t i = 0;
    while (i < d.size()) {
      std::uint32_t cp;
      int n = utf8_decode(d, i, cp);
      ASSERT_GT(n, 0);
      i += static_cast<std::size_t>(n);
    }
    all += d;
  }
  EXPECT_EQ(all + st.flush(), text);
}

TEST(native_tokenizer, chat_templates) {
  std::vector<msg::chat_message> m = {{"system", "be brief"}, {"user", "hi"}};
  EXPECT_EQ(render_chat(chat_family::chatml, m),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(chat_family::llama3, m),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render_chat(chat_family::zephyr, m), "<|system|>\nbe brief</s>\n<|user|>\nhi</s>\n<|assistant|>\n");
  EXPECT_EQ(render_chat(chat_family::llama2, {{"system", "be brief"}, {"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}}),
            "<s>[INST] <<SYS>>\nbe brief\n<</SYS>>\n\nhi [/INST] hello </s><s>[INST] bye [/INST]");
  auto q = tokenizer::parse(make_tokenizer_json("qwen2", 20));
  EXPECT_EQ(detect_chat_family(*q, "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"), chat_family::llama2);
  EXPECT_EQ(detect_chat_family(*q, "{{ '<|user|>\n' + message['content'] + eos_token }}"), chat_family::zephyr);
  EXPECT_EQ(detect_chat_family(*q), chat_family::chatml);
  EXPECT_EQ(q->mode(), pretokenizer::qwen2);
  auto l = tokenizer::parse(make_tokenizer_json("llama", 20));
  EXPECT_EQ(detect_chat_family(*l), chat_family::llama3);
}

// SentencePiece-style BPE (Llama 2 / TinyLlama tokenizer.json layout).
TEST(native_tokenizer, sentencepiece_bpe_with_byte_fallback) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int id = 259;
  for (const char* t : {"▁", "h", "e", "l", "o", "w", "r", "d"}) vocab[t] = id++;
  std::vector<std::string> merges = {"h e", "l l", "▁ he", "▁he ll", "▁hell o", "▁ w", "o r", "▁w or", "l d", "▁wor ld"};
  for (auto& m : merges) {
    auto sp = m.find(' ');
    vocab[m.substr(0, sp) + m.substr(sp + 1)] = id++;
  }
  json j = {
      {"normalizer", {{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "▁"}},
                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}}, {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
  auto t = tokenizer::parse(j.dump());
  ASSERT_TRUE(t.ok()) << t.err().describe();
  EXPECT_EQ(t->mode(), pretokenizer::sentencepiece);
  auto hello = *t->find("▁hello"), world = *t->find("▁world");
  EXPECT_EQ(t->encode("hello world"), (std::vector<tok_id>{hello, world}));
  // é is not in the vocabulary: its UTF-8 bytes via <0xC3><0xA9>.
  EXPECT_EQ(t->encode("hello é"), (std::vector<tok_id>{hello, 259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->decode(t->encode("hello world é")), "hello world é");
  EXPECT_EQ(t->token_bytes(world), " world");  // streaming keeps the space
  EXPECT_EQ(t->encode("<s>hello", true).front(), 1);
}

TEST(native_tokenizer, malformed_json_is_an_error) {
  EXPECT_EQ(tokenizer::parse("{nope").err().code, errc::corrupt);
  EXPECT_EQ(tokenizer::parse(R"({"model": {"type": "Unigram", "vocab": []}})").err().code, errc::unsupported);
  EXPECT_FALSE(tokenizer::parse(R"({"model": {"type": "BPE"}})").ok());
  EXPECT_FALSE(tokenizer::parse(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}})").ok());
}

}  // namespace
}  // namespace yard::backends::native
