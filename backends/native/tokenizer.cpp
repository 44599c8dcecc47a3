#include "backends/native/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace yard::backends::native {

using nlohmann::json;

// ---- byte-level mapping ----------------------------------------------------

namespace {

struct byte_map {
  std::array<std::string, 256> to_uni;
  std::array<int, 512> from_uni;  // code point (< 512) -> byte or -1
  byte_map() {
    from_uni.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      std::uint32_t cp = printable ? static_cast<std::uint32_t>(b) : static_cast<std::uint32_t>(256 + n++);
      utf8_append(to_uni[b], cp);
      from_uni[cp] = b;
    }
  }
};

const byte_map& bmap() {
  static const byte_map m;
  return m;
}

struct cps {
  std::vector<std::uint32_t> cp;
  std::vector<std::size_t> off;  // byte offset of cp[i]; off[n] = size
};

cps to_cps(std::string_view s) {
  cps r;
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint32_t c;
    int n = utf8_decode(s, i, c);
    if (n == 0) { c = 0xfffd; n = 1; }  // invalid byte: its own "character"
    r.cp.push_back(c);
    r.off.push_back(i);
    i += static_cast<std::size_t>(n);
  }
  r.off.push_back(s.size());
  return r;
}

// ---- pre-tokenizer: tokenizer.json's Split regexes, run by PCRE2 -------------

std::string regex_escape(std::string_view lit) {
  std::string out;
  for (char c : lit) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// The split patterns of a pre_tokenizer, in the order they apply.
status collect_splits(const json& pre, std::vector<std::string>& out) {
  if (!pre.is_object()) return status::success();
  auto type = pre.value("type", "");
  if (type == "Sequence") {
    if (pre.contains("pretokenizers") && pre["pretokenizers"].is_array())
      for (auto& p : pre["pretokenizers"])
        if (auto st = collect_splits(p, out); !st) return st;
    return status::success();
  }
  if (type == "Split") {
    auto behavior = pre.value("behavior", "Isolated");
    if (behavior != "Isolated" || pre.value("invert", false))
      return make_error(errc::unsupported, "tokenizer.json: pre_tokenizer Split with behavior '" + behavior +
                                               "'" + (pre.value("invert", false) ? " and invert" : "") +
                                               " is not supported (only Isolated)");
    if (!pre.contains("pattern") || !pre["pattern"].is_object())
      return make_error(errc::corrupt, "tokenizer.json: pre_tokenizer Split has no 'pattern'");
    auto& pat = pre["pattern"];
    if (pat.contains("Regex") && pat["Regex"].is_string()) out.push_back(pat["Regex"].get<std::string>());
    else if (pat.contains("String") && pat["String"].is_string()) out.push_back(regex_escape(pat["String"].get<std::string>()));
    else return make_error(errc::corrupt, "tokenizer.json: pre_tokenizer Split pattern is neither Regex nor String");
    return status::success();
  }
  if (type == "ByteLevel") {
    if (pre.value("use_regex", true)) out.emplace_back(gpt2_split_pattern);
    return status::success();
  }
  if (type == "Digits") {
    out.emplace_back(pre.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    return status::success();
  }
  if (type == "Metaspace") return status::success();  // the SentencePiece path
  return make_error(errc::unsupported, "tokenizer.json: pre_tokenizer type '" + type + "' is not supported");
}

}  // namespace

const std::string& byte_to_unicode(std::uint8_t b) { return bmap().to_uni[b]; }

bool unicode_to_byte(std::uint32_t cp, std::uint8_t& out) {
  if (cp >= 512 || bmap().from_uni[cp] < 0) return false;
  out = static_cast<std::uint8_t>(bmap().from_uni[cp]);
  return true;
}

// ---- tokenizer -------------------------------------------------------------

result<tokenizer> tokenizer::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(errc::not_found, "cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = parse(ss.str());
  if (!t) return make_error(t.err().code, path + ": " + t.err().message);
  return t;
}

result<tokenizer> tokenizer::parse(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(errc::corrupt, "tokenizer.json is not a valid JSON object");
  if (!j.contains("model") || !j["model"].is_object()) return make_error(errc::corrupt, "tokenizer.json: missing field 'model'");
  auto& m = j["model"];
  if (!m.contains("type") || m["type"] != "BPE")
    return make_error(errc::unsupported, "tokenizer.json: field 'model.type' must be \"BPE\" (byte-level BPE)");
  if (!m.contains("vocab") || !m["vocab"].is_object()) return make_error(errc::corrupt, "tokenizer.json: missing field 'model.vocab'");
  tokenizer t;
  auto put = [&](const std::string& s, long long id) -> status {
    if (id < 0 || id > (1 << 24)) return make_error(errc::corrupt, "tokenizer.json: token '" + s + "' has a bad id");
    if (static_cast<std::size_t>(id) >= t.id_to_token_.size()) {
      t.id_to_token_.resize(static_cast<std::size_t>(id) + 1);
      t.is_added_.resize(static_cast<std::size_t>(id) + 1, 0);
      t.is_special_.resize(static_cast<std::size_t>(id) + 1, 0);
    }
    t.id_to_token_[static_cast<std::size_t>(id)] = s;
    return status::success();
  };
  for (auto& [s, id] : m["vocab"].items()) {
    if (!id.is_number_integer()) return make_error(errc::corrupt, "tokenizer.json: model.vocab['" + s + "'] is not an integer");
    if (auto st = put(s, id.get<long long>()); !st) return st.err();
    t.vocab_[s] = id.get<tok_id>();
  }
  if (m.contains("merges") && m["merges"].is_array()) {
    int rank = 0;
    for (auto& mg : m["merges"]) {
      std::string key;
      if (mg.is_string()) key = mg.get<std::string>();
      else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string())
        key = mg[0].get<std::string>() + " " + mg[1].get<std::string>();
      else return make_error(errc::corrupt, "tokenizer.json: model.merges[" + std::to_string(rank) + "] is malformed");
      t.merge_rank_.emplace(std::move(key), rank++);
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (auto& a : j["added_tokens"]) {
      if (!a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
        return make_error(errc::corrupt, "tokenizer.json: an added_tokens entry lacks 'id' or 'content'");
      auto id = a["id"].get<tok_id>();
      auto content = a["content"].get<std::string>();
      if (auto st = put(content, id); !st) return st.err();
      t.is_added_[static_cast<std::size_t>(id)] = 1;
      t.is_special_[static_cast<std::size_t>(id)] = a.value("special", false) ? 1 : 0;
      t.added_ids_[content] = id;
      if (!content.empty()) t.added_.push_back(content);
    }
  }
  std::sort(t.added_.begin(), t.added_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  // Pre-tokenizer: look for the Split regex of Llama 3 / Qwen2.
  std::string pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "";
  if (pre.find("\\\\p{N}{1,3}") != std::string::npos) t.mode_ = pretokenizer::llama3;
  else if (pre.find("[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+") != std::string::npos) t.mode_ = pretokenizer::qwen2;
  else t.mode_ = pretokenizer::gpt2;
  {
    // Byte-level BPE splits with tokenizer.json's own regexes (unused on the SentencePiece path).
    std::vector<std::string> patterns;
    if (j.contains("pre_tokenizer"))
      if (auto st = collect_splits(j["pre_tokenizer"], patterns); !st) return st.err();
    if (patterns.empty()) patterns.emplace_back(gpt2_split_pattern);  // no pre_tokenizer: GPT-2's split
    for (const auto& p : patterns) {
      auto r = regex_split::compile(p);
      if (!r) return r.err();
      t.splits_.push_back(std::move(*r));
    }
  }
  std::string norm = j.contains("normalizer") ? j["normalizer"].dump() : "";
  bool byte_fallback = m.contains("byte_fallback") && m["byte_fallback"].is_boolean() && m["byte_fallback"].get<bool>();
  if (pre.find("Metaspace") != std::string::npos || norm.find("\u2581") != std::string::npos ||
      norm.find("\xe2\x96\x81") != std::string::npos || norm.find("\u2581") != std::string::npos ||
      norm.find("▁") != std::string::npos || byte_fallback) {
    t.mode_ = pretokenizer::sentencepiece;
    t.sp_prepend_all_ = pre.find("\"first\"") == std::string::npos;
    if (pre.find("Metaspace") != std::string::npos && pre.find("\"never\"") != std::string::npos) t.sp_prepend_all_ = false;
    std::string dec = j.contains("decoder") ? j["decoder"].dump() : "";
    t.sp_strip_lead_ = dec.find("Strip") != std::string::npos || dec.find("Metaspace") != std::string::npos;
  }
  // BOS from a TemplateProcessing post-processor.
  if (j.contains("post_processor") && j["post_processor"].is_object()) {
    auto& pp = j["post_processor"];
    const json* tp = nullptr;
    if (pp.value("type", "") == "TemplateProcessing") tp = &pp;
    else if (pp.contains("processors") && pp["processors"].is_array())
      for (auto& p : pp["processors"])
        if (p.value("type", "") == "TemplateProcessing") tp = &p;
    if (tp && tp->contains("single") && (*tp)["single"].is_array() && !(*tp)["single"].empty()) {
      auto& first = (*tp)["single"][0];
      if (first.contains("SpecialToken") && first["SpecialToken"].contains("id")) {
        auto name = first["SpecialToken"]["id"].get<std::string>();
        if (auto id = t.find(name)) t.bos_ = *id;
      }
    }
  }
  return t;
}

std::optional<tok_id> tokenizer::find(std::string_view token) const {
  if (auto it = added_ids_.find(std::string(token)); it != added_ids_.end()) return it->second;
  if (auto it = vocab_.find(std::string(token)); it != vocab_.end()) return it->second;
  return std::nullopt;
}

bool tokenizer::is_special(tok_id id) const {
  return id >= 0 && static_cast<std::size_t>(id) < is_special_.size() && is_special_[static_cast<std::size_t>(id)];
}

std::vector<std::string> tokenizer::pre_split(std::string_view text) const {
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& sp : splits_) {
    next.clear();
    for (auto p : pieces) sp.split(p, next);
    pieces.swap(next);
  }
  return {pieces.begin(), pieces.end()};
}

void tokenizer::bpe_word(std::string_view word, std::vector<tok_id>& out) const {
  std::vector<std::string> sym;
  for (char ch : word) sym.push_back(byte_to_unicode(static_cast<std::uint8_t>(ch)));
  bpe_symbols(std::move(sym), out);
}

void tokenizer::encode_sentencepiece(std::string_view seg, bool first, std::vector<tok_id>& out) const {
  if (seg.empty()) return;
  static const std::string meta = "\xE2\x96\x81";  // U+2581
  std::string text = (first || sp_prepend_all_) ? meta : std::string();
  for (char ch : seg) {
    if (ch == ' ') text += meta;
    else text.push_back(ch);
  }
  std::vector<std::string> sym;
  auto c = to_cps(text);
  for (std::size_t i = 0; i < c.cp.size(); ++i) sym.emplace_back(text.substr(c.off[i], c.off[i + 1] - c.off[i]));
  bpe_symbols(std::move(sym), out);
}

void tokenizer::bpe_symbols(std::vector<std::string> sym, std::vector<tok_id>& out) const {
  std::string key;
  while (sym.size() > 1) {
    int best = INT_MAX;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
      key.assign(sym[i]).append(" ").append(sym[i + 1]);
      auto it = merge_rank_.find(key);
      if (it != merge_rank_.end() && it->second < best) { best = it->second; at = i; }
    }
    if (best == INT_MAX) break;
    std::string a = sym[at], b = sym[at + 1];
    std::vector<std::string> next;
    next.reserve(sym.size());
    for (std::size_t i = 0; i < sym.size();) {
      if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) { next.push_back(a + b); i += 2; }
      else next.push_back(std::move(sym[i++]));
    }
    sym.swap(next);
  }
  for (const auto& s : sym) {
    if (auto it = vocab_.find(s); it != vocab_.end()) out.push_back(it->second);
    else if (mode_ == pretokenizer::sentencepiece) {  // <0xNN> byte fallback
      for (unsigned char ch : s) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", ch);
        if (auto jt = vocab_.find(name); jt != vocab_.end()) out.push_back(jt->second);
      }
    } else {  // a merge result missing from the vocab: fall back to its bytes
      auto c = to_cps(s);
      for (std::size_t i = 0; i < c.cp.size(); ++i) {
        std::string one(s.substr(c.off[i], c.off[i + 1] - c.off[i]));
        if (auto jt = vocab_.find(one); jt != vocab_.end()) out.push_back(jt->second);
      }
    }
  }
}

std::vector<tok_id> tokenizer::encode(std::string_view text, bool parse_special, bool add_bos) const {
  std::vector<tok_id> out;
  if (add_bos && bos_) out.push_back(*bos_);
  bool first = true;
  auto encode_plain = [&](std::string_view seg) {
    if (mode_ == pretokenizer::sentencepiece) {
      encode_sentencepiece(seg, first, out);
      first = false;
      return;
    }
    for (const auto& piece : pre_split(seg)) bpe_word(piece, out);
  };
  std::size_t start = 0, i = 0;
  while (i < text.size()) {
    bool matched = false;
    if (parse_special) {
      for (const auto& a : added_) {
        if (text.compare(i, a.size(), a) == 0) {
          encode_plain(text.substr(start, i - start));
          out.push_back(added_ids_.at(a));
          i += a.size();
          start = i;
          matched = true;
          break;
        }
      }
    }
    if (!matched) ++i;
  }
  encode_plain(text.substr(start));
  return out;
}

std::string tokenizer::token_bytes(tok_id id, bool skip_special) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
  const auto& s = id_to_token_[static_cast<std::size_t>(id)];
  if (is_added_[static_cast<std::size_t>(id)]) return (skip_special && is_special_[static_cast<std::size_t>(id)]) ? std::string() : s;
  std::string out;
  if (mode_ == pretokenizer::sentencepiece) {
    if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>')
      return std::string(1, static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
    for (std::size_t i = 0; i < s.size();) {
      if (s.compare(i, 3, "\xE2\x96\x81") == 0) { out.push_back(' '); i += 3; }
      else out.push_back(s[i++]);
    }
    return out;
  }
  auto c = to_cps(s);
  for (auto cp : c.cp) {
    std::uint8_t b;
    if (unicode_to_byte(cp, b)) out.push_back(static_cast<char>(b));
    else utf8_append(out, cp);
  }
  return out;
}

std::string tokenizer::decode(const std::vector<tok_id>& ids, bool skip_special) const {
  std::string out;
  for (auto id : ids) out += token_bytes(id, skip_special);
  if (mode_ == pretokenizer::sentencepiece && sp_strip_lead_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace yard::backends::native
