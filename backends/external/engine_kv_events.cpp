// backends/external/engine_kv_events.cpp — see engine_kv_events.hpp.
#include "backends/external/engine_kv_events.hpp"

#include <limits>

#include <msgpack.hpp>

#include "messages/codec.hpp"

namespace yard::backends::external {
namespace {

namespace mt = msgpack::type;

// A batch carries every token of its stored blocks: allow far more than a request body.
constexpr msg::decode_limits payload_limits{std::size_t{256} << 20, 32};

// One msgpack struct seen either way msgspec writes it: an array of fields in declaration
// order (array_like, `skip` leading entries such as the tag) or a map keyed by field name.
class fields {
 public:
  fields(const msgpack::object& o, std::uint32_t skip) : o_(o), skip_(skip) {}
  // Field `index` (declaration order) named `name`; nullptr when absent or nil.
  const msgpack::object* get(std::uint32_t index, std::string_view name) const {
    const msgpack::object* v = nullptr;
    if (o_.type == mt::ARRAY) {
      if (skip_ + index < o_.via.array.size) v = &o_.via.array.ptr[skip_ + index];
    } else {
      for (std::uint32_t i = 0; i < o_.via.map.size; ++i) {
        const auto& kv = o_.via.map.ptr[i];
        if (kv.key.type == mt::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == name) {
          v = &kv.val;
          break;
        }
      }
    }
    return v == nullptr || v->type == mt::NIL ? nullptr : v;
  }

 private:
  const msgpack::object& o_;
  std::uint32_t skip_;
};

// Field readers: false (with `err` naming the field) on a wrong type.
struct reader {
  std::string err;
  std::string where;  // "event 3 (BlockStored)"

  bool fail(std::string_view field, std::string_view why) {
    err = where + ": field '" + std::string(field) + "' " + std::string(why);
    return false;
  }
  bool hash(const msgpack::object& o, std::string_view field, engine_hash& out) {
    if (o.type == mt::POSITIVE_INTEGER) { out = engine_hash_of(o.via.u64); return true; }
    if (o.type == mt::NEGATIVE_INTEGER) { out = engine_hash_of(static_cast<std::uint64_t>(o.via.i64)); return true; }
    if (o.type == mt::BIN && o.via.bin.size > 0) { out.assign(o.via.bin.ptr, o.via.bin.size); return true; }
    return fail(field, "must hold integer or non-empty bytes hashes");
  }
  bool hashes(const msgpack::object* o, std::string_view field, std::vector<engine_hash>& out) {
    if (o == nullptr || o->type != mt::ARRAY) return fail(field, "must be an array of hashes");
    out.resize(o->via.array.size);
    for (std::uint32_t i = 0; i < o->via.array.size; ++i)
      if (!hash(o->via.array.ptr[i], field, out[i])) return false;
    return true;
  }
  bool tokens(const msgpack::object* o, std::vector<msg::token_id>& out) {
    if (o == nullptr || o->type != mt::ARRAY) return fail("token_ids", "must be an array of token ids");
    out.resize(o->via.array.size);
    for (std::uint32_t i = 0; i < o->via.array.size; ++i) {
      const auto& t = o->via.array.ptr[i];
      if (t.type != mt::POSITIVE_INTEGER || t.via.u64 > std::numeric_limits<msg::token_id>::max())
        return fail("token_ids", "must hold 32-bit non-negative token ids");
      out[i] = static_cast<msg::token_id>(t.via.u64);
    }
    return true;
  }
  bool int64(const msgpack::object* o, std::string_view field, std::optional<std::int64_t>& out) {
    if (o == nullptr) return true;  // absent or nil: the default
    if (o->type == mt::POSITIVE_INTEGER && o->via.u64 <= std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
      out = static_cast<std::int64_t>(o->via.u64);
      return true;
    }
    if (o->type == mt::NEGATIVE_INTEGER) { out = o->via.i64; return true; }
    return fail(field, "must be an integer or nil");
  }
  bool str(const msgpack::object* o, std::string_view field, std::optional<std::string>& out) {
    if (o == nullptr) return true;
    if (o->type != mt::STR) return fail(field, "must be a string or nil");
    out.emplace(o->via.str.ptr, o->via.str.size);
    return true;
  }
  bool medium(const msgpack::object* o, std::string& out) {
    std::optional<std::string> m;
    if (!str(o, "medium", m)) return false;
    out = m.value_or("");
    return true;
  }
  // vLLM extra_keys: nil or one entry (nil or a tuple) per block, kept as msgpack bytes.
  bool extra_keys(const msgpack::object* o, std::vector<std::string>& out) {
    if (o == nullptr) return true;
    if (o->type != mt::ARRAY) return fail("extra_keys", "must be an array or nil");
    out.resize(o->via.array.size);
    for (std::uint32_t i = 0; i < o->via.array.size; ++i) {
      const auto& k = o->via.array.ptr[i];
      if (k.type == mt::NIL) continue;
      msgpack::sbuffer buf;
      msgpack::pack(buf, k);
      out[i].assign(buf.data(), buf.size());
    }
    return true;
  }
  // SGLang's salt: BlockStoredWithMetadata.metadata {"cache_salt": str} (or [str] if ever
  // array-like), or a plain string where a later layout puts cache_salt; anything else is ignored.
  bool salt(const msgpack::object* o, std::optional<std::string>& out) {
    if (o == nullptr) return true;
    if (o->type == mt::STR) return str(o, "cache_salt", out);
    if (o->type != mt::MAP && o->type != mt::ARRAY) return true;
    return str(fields(*o, 0).get(0, "cache_salt"), "metadata.cache_salt", out);
  }
};

bool decode_stored(kv_event_source src, const fields& f, reader& r, engine_block_stored& e) {
  if (!r.hashes(f.get(0, "block_hashes"), "block_hashes", e.block_hashes)) return false;
  if (const auto* p = f.get(1, "parent_block_hash")) {
    e.parent.emplace();
    if (!r.hash(*p, "parent_block_hash", *e.parent)) return false;
  }
  if (!r.tokens(f.get(2, "token_ids"), e.token_ids)) return false;
  const auto* bs = f.get(3, "block_size");
  if (bs == nullptr || bs->type != mt::POSITIVE_INTEGER || bs->via.u64 == 0 ||
      bs->via.u64 > std::numeric_limits<std::uint32_t>::max())
    return r.fail("block_size", "must be a positive integer");
  e.block_size = static_cast<std::uint32_t>(bs->via.u64);
  if (!r.int64(f.get(4, "lora_id"), "lora_id", e.lora_id)) return false;
  if (!r.medium(f.get(5, "medium"), e.medium)) return false;
  if (src == kv_event_source::sglang) {
    const auto* s = f.get(6, "cache_salt");
    return r.salt(s != nullptr ? s : f.get(6, "metadata"), e.cache_salt);
  }
  return r.str(f.get(6, "lora_name"), "lora_name", e.lora_name) && r.extra_keys(f.get(7, "extra_keys"), e.extra_keys) &&
         r.int64(f.get(8, "group_idx"), "group_idx", e.group_idx);
}

bool decode_removed(kv_event_source src, const fields& f, reader& r, engine_block_removed& e) {
  if (!r.hashes(f.get(0, "block_hashes"), "block_hashes", e.block_hashes)) return false;
  if (!r.medium(f.get(1, "medium"), e.medium)) return false;
  return src == kv_event_source::sglang || r.int64(f.get(2, "group_idx"), "group_idx", e.group_idx);
}

// One event: appended to `out`, or skipped (unknown tag, counted), or false on a broken field.
bool decode_event(kv_event_source src, const msgpack::object& o, std::size_t index, engine_kv_batch& out, reader& r) {
  r.where = "event " + std::to_string(index);
  std::string_view tag;
  std::uint32_t skip = 0;
  if (o.type == mt::ARRAY && o.via.array.size > 0 && o.via.array.ptr[0].type == mt::STR) {
    tag = std::string_view(o.via.array.ptr[0].via.str.ptr, o.via.array.ptr[0].via.str.size);
    skip = 1;
  } else if (o.type == mt::MAP) {
    const auto* t = fields(o, 0).get(0, "type");
    if (t == nullptr || t->type != mt::STR) return r.fail("type", "must name the event (map without a string tag)");
    tag = std::string_view(t->via.str.ptr, t->via.str.size);
  } else {
    r.err = r.where + ": must be a tagged array or a map";
    return false;
  }
  r.where += " (" + std::string(tag) + ")";
  const fields f(o, skip);
  if (tag == "BlockStored") {
    engine_block_stored e;
    if (!decode_stored(src, f, r, e)) return false;
    out.events.emplace_back(std::move(e));
  } else if (tag == "BlockRemoved") {
    engine_block_removed e;
    if (!decode_removed(src, f, r, e)) return false;
    out.events.emplace_back(std::move(e));
  } else if (tag == "AllBlocksCleared") {
    out.events.emplace_back(engine_all_cleared{});
  } else {
    ++out.unknown_events;
  }
  return true;
}

}  // namespace

engine_hash engine_hash_of(std::uint64_t h) {
  engine_hash out(8, '\0');
  for (int i = 7; i >= 0; --i, h >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(h & 0xff);
  return out;
}

std::string_view to_string(kv_event_source s) { return s == kv_event_source::vllm ? "vllm" : "sglang"; }

result<engine_kv_batch> decode_engine_kv_batch(kv_event_source source, std::string_view payload) {
  auto handle = msg::unpack_msgpack(payload, payload_limits);
  if (!handle) return handle.err();
  const msgpack::object& o = handle->get();
  if (o.type != mt::ARRAY && o.type != mt::MAP)
    return make_error(errc::bad_request, "KV event batch must be an array [ts, events, ...] or a map");
  const fields f(o, 0);
  engine_kv_batch out;
  const auto* ts = f.get(0, "ts");
  if (ts == nullptr) return make_error(errc::bad_request, "KV event batch has no 'ts'");
  if (ts->type == mt::FLOAT64 || ts->type == mt::FLOAT32) out.ts = ts->via.f64;
  else if (ts->type == mt::POSITIVE_INTEGER) out.ts = static_cast<double>(ts->via.u64);
  else return make_error(errc::bad_request, "KV event batch 'ts' must be a number");
  const auto* events = f.get(1, "events");
  if (events == nullptr || events->type != mt::ARRAY)
    return make_error(errc::bad_request, "KV event batch 'events' must be an array");
  reader r;
  r.where = "batch";
  const char* rank_name = source == kv_event_source::vllm ? "data_parallel_rank" : "attn_dp_rank";
  if (!r.int64(f.get(2, rank_name), rank_name, out.dp_rank)) return make_error(errc::bad_request, r.err);
  out.events.reserve(events->via.array.size);
  for (std::uint32_t i = 0; i < events->via.array.size; ++i) {
    if (decode_event(source, events->via.array.ptr[i], i, out, r)) continue;
    if (out.malformed_events++ == 0) out.first_error = r.err;
  }
  return out;
}

}  // namespace yard::backends::external
