// Round-trips and bad-input handling for the msgpack and JSON codecs.
#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include "messages/cluster.hpp"
#include "messages/error_chunk.hpp"

using namespace yard;
using namespace yard::msg;

namespace {

generate_request sample_request() {
  generate_request r;
  r.request_id = "req-1";
  r.model = "mock";
  r.prompt = "hello";
  r.sampling.temperature = 0.5;
  r.sampling.seed = 42;
  r.stop = {"\n"};
  r.max_tokens = 7;
  r.cache_salt = "tenant-a";
  return r;
}

// scale_request and agent_role_bounds as they were while roles were strings
// in the core: the same fields, the role a std::string. Encoding the enum
// versions must give the same bytes.
struct string_role_scale_request {
  std::string request_id, role;
  std::optional<std::int32_t> delta;
  std::optional<std::uint32_t> target;
  std::string reason;
};
template <class V> void describe(V& v, string_role_scale_request& x) {
  v.opt("request_id", x.request_id);
  v.req("role", x.role);
  v.opt("delta", x.delta);
  v.opt("target", x.target);
  v.opt("reason", x.reason);
}
struct string_role_bounds {
  std::string role;
  std::uint32_t running = 0, min_count = 0, max_count = 0;
};
template <class V> void describe(V& v, string_role_bounds& x) {
  v.req("role", x.role);
  v.opt("running", x.running);
  v.opt("min_count", x.min_count);
  v.opt("max_count", x.max_count);
}

}  // namespace

TEST(codec, generate_request_round_trips_in_both_formats) {
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    auto bytes = encode(sample_request(), f);
    auto back = decode<generate_request>(bytes, f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->request_id, "req-1");
    EXPECT_EQ(*back->prompt, "hello");
    EXPECT_EQ(back->max_tokens, 7u);
    EXPECT_EQ(*back->sampling.seed, 42u);
    EXPECT_DOUBLE_EQ(back->sampling.temperature, 0.5);
    EXPECT_EQ(back->stop, std::vector<std::string>{"\n"});
    EXPECT_EQ(*back->cache_salt, "tenant-a");
    EXPECT_FALSE(back->token_ids.has_value());
  }
}

TEST(codec, an_error_chunk_ends_its_stream_with_the_code_and_text_in_both_formats) {
  auto c = error_chunk("req-9", 4, errc::unavailable, "worker w1 is draining");
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    auto back = decode<token_chunk>(encode(c, f), f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->request_id, "req-9");
    EXPECT_EQ(back->seq, 4u);
    ASSERT_TRUE(back->finish_reason);
    EXPECT_EQ(*back->finish_reason, finish_kind::error);
    ASSERT_TRUE(back->error);
    EXPECT_EQ(back->error->code, 503);
    EXPECT_EQ(back->error->message, "worker w1 is draining");
    EXPECT_TRUE(back->token_ids.empty());
  }
}

TEST(codec, nested_optional_and_vectors_of_structs_round_trip) {
  kv_event_batch b;
  b.worker_id = "w1";
  b.seq = 9;
  b.stream = 1764900000123456;
  b.events.push_back({kv_event_kind::stored, {1, 2, 3}, 77, 2});
  b.events.push_back({kv_event_kind::cleared, {}, std::nullopt, 1});
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    auto back = decode<kv_event_batch>(encode(b, f), f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->stream, 1764900000123456u);
    ASSERT_EQ(back->events.size(), 2u);
    EXPECT_EQ(back->events[0].block_hashes, (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(*back->events[0].parent_hash, 77u);
    EXPECT_EQ(back->events[0].tier, 2);
    EXPECT_FALSE(back->events[1].parent_hash.has_value());
  }
}

TEST(codec, wire_enums_travel_as_their_names_and_unknown_names_fail_naming_the_choices) {
  kv_event_batch b;
  b.worker_id = "w";
  b.events.push_back({kv_event_kind::removed, {5}, std::nullopt, 1});
  auto json = encode(b, wire_format::json);
  EXPECT_NE(json.find(R"("kind":"removed")"), std::string::npos) << json;
  auto mp = decode<kv_event_batch>(encode(b), wire_format::msgpack);
  ASSERT_TRUE(mp.ok());
  EXPECT_EQ(mp->events[0].kind, kv_event_kind::removed);
  // A JSON client writes the name; anything else is a clear 400.
  auto ok = decode<kv_event_batch>(R"({"worker_id":"w","seq":0,"events":[{"kind":"cleared"}]})", wire_format::json);
  ASSERT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_EQ(ok->events[0].kind, kv_event_kind::cleared);
  auto bad = decode<kv_event_batch>(R"({"worker_id":"w","seq":0,"events":[{"kind":"evicted"}]})", wire_format::json);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_request);
  EXPECT_NE(bad.err().message.find("events[0].kind"), std::string::npos) << bad.err().message;
  EXPECT_NE(bad.err().message.find("stored, removed, cleared"), std::string::npos) << bad.err().message;
  auto num = decode<kv_event_batch>(R"({"worker_id":"w","seq":0,"events":[{"kind":1}]})", wire_format::json);
  EXPECT_FALSE(num.ok());
}

TEST(codec, worker_roles_in_cluster_messages_travel_as_their_names_byte_for_byte) {
  scale_request req;
  req.request_id = "r1";
  req.role = worker_role::prefill;
  req.delta = 2;
  req.reason = "ttft";
  const string_role_scale_request old_req{"r1", "prefill", 2, std::nullopt, "ttft"};
  const agent_role_bounds bounds{worker_role::prefill, 3, 1, 8};
  const string_role_bounds old_bounds{"prefill", 3, 1, 8};
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    EXPECT_EQ(encode(req, f), encode(old_req, f));
    EXPECT_EQ(encode(bounds, f), encode(old_bounds, f));
    auto back = decode<scale_request>(encode(req, f), f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->role, worker_role::prefill);
    EXPECT_EQ(back->request_id, "r1");
    EXPECT_EQ(*back->delta, 2);
    EXPECT_FALSE(back->target.has_value());
    auto from_old = decode<agent_role_bounds>(encode(old_bounds, f), f);
    ASSERT_TRUE(from_old.ok()) << from_old.err().message;
    EXPECT_EQ(from_old->role, worker_role::prefill);
    EXPECT_EQ(from_old->running, 3u);
    EXPECT_EQ(from_old->max_count, 8u);
  }
  auto json = encode(req, wire_format::json);
  EXPECT_NE(json.find(R"("role":"prefill")"), std::string::npos) << json;
  auto bounds_json = encode(bounds, wire_format::json);
  EXPECT_NE(bounds_json.find(R"("role":"prefill")"), std::string::npos) << bounds_json;
  // msgpack: the key "role" (fixstr 4) then the string "prefill" (fixstr 7).
  EXPECT_NE(encode(req).find(std::string("\xa4" "role" "\xa7" "prefill")), std::string::npos);
  auto handle = unpack_msgpack(encode(bounds));
  ASSERT_TRUE(handle.ok()) << handle.err().message;
  nlohmann::ordered_json tree;
  std::string err;
  ASSERT_TRUE(detail::mp_to_json(handle->get(), tree, err, "")) << err;
  ASSERT_TRUE(tree.at("role").is_string()) << tree.dump();
  EXPECT_EQ(tree.at("role").get<std::string>(), "prefill");
  // A role that is not a worker role fails the decode, naming the field and the choices.
  auto bad = decode<scale_request>(R"({"role":"prefil","delta":1})", wire_format::json);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_request);
  EXPECT_EQ(bad.err().message, "field 'role' must be one of both, prefill, decode (got 'prefil')");
  string_role_scale_request typo = old_req;
  typo.role = "prefil";
  auto bad_mp = decode<scale_request>(encode(typo), wire_format::msgpack);
  ASSERT_FALSE(bad_mp.ok());
  EXPECT_EQ(bad_mp.err().message, "field 'role' must be one of both, prefill, decode (got 'prefil')");
  auto nested = decode<agent_status>(R"({"node":"n","roles":[{"role":"gpu"}]})", wire_format::json);
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.err().message.find("field 'roles[0].role' must be one of both, prefill, decode"), std::string::npos)
      << nested.err().message;
}

TEST(codec, a_heartbeats_component_travels_as_its_name_and_unknown_ones_are_refused) {
  heartbeat hb;
  hb.instance_id = "w0";
  hb.component = component_kind::router;
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    auto back = decode<heartbeat>(encode(hb, f), f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->component, component_kind::router);
  }
  EXPECT_NE(encode(hb, wire_format::json).find(R"("component":"router")"), std::string::npos);
  EXPECT_NE(encode(hb).find(std::string("\xa9" "component" "\xa6" "router")), std::string::npos);
  // What a plain NATS client sends: only the required fields.
  auto minimal = decode<heartbeat>(R"({"instance_id":"w1","component":"worker"})", wire_format::json);
  ASSERT_TRUE(minimal.ok()) << minimal.err().message;
  EXPECT_EQ(minimal->component, component_kind::worker);
  auto bad = decode<heartbeat>(R"({"instance_id":"w1","component":"planner"})", wire_format::json);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, "field 'component' must be one of worker, router, frontend, agent (got 'planner')");
  auto missing = decode<heartbeat>(R"({"instance_id":"w1"})", wire_format::json);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.err().message.find("component"), std::string::npos) << missing.err().message;
}

TEST(codec, openai_sampling_fields_and_token_logprobs_round_trip) {
  generate_request r = sample_request();
  r.max_tokens = 0;  // until the context ends
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 3;
  r.sampling.presence_penalty = 0.5;
  r.sampling.frequency_penalty = -0.5;
  r.sampling.repetition_penalty = 1.5;
  r.sampling.logit_bias = {{65, 100.0f}, {66, -100.0f}};
  r.sampling.min_tokens = 4;
  token_chunk c;
  c.request_id = "req-1";
  c.seq = 1;
  c.token_ids = {97};
  c.token_logprobs = {{97, "a", -0.25f, {{97, "a", -0.25f}, {98, "b", -2.0f}}}};
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    auto back = decode<generate_request>(encode(r, f), f);
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->max_tokens, 0u);
    EXPECT_EQ(back->sampling.top_logprobs, 3u);
    EXPECT_DOUBLE_EQ(back->sampling.presence_penalty, 0.5);
    EXPECT_DOUBLE_EQ(back->sampling.frequency_penalty, -0.5);
    EXPECT_DOUBLE_EQ(back->sampling.repetition_penalty, 1.5);
    ASSERT_EQ(back->sampling.logit_bias.size(), 2u);
    EXPECT_EQ(back->sampling.logit_bias[1].token, 66u);
    EXPECT_FLOAT_EQ(back->sampling.logit_bias[1].bias, -100.0f);
    EXPECT_EQ(back->sampling.min_tokens, 4u);
    auto cb = decode<token_chunk>(encode(c, f), f);
    ASSERT_TRUE(cb.ok()) << cb.err().message;
    ASSERT_EQ(cb->token_logprobs.size(), 1u);
    EXPECT_EQ(cb->token_logprobs[0].text, "a");
    ASSERT_EQ(cb->token_logprobs[0].top.size(), 2u);
    EXPECT_EQ(cb->token_logprobs[0].top[1].token, 98u);
    EXPECT_FLOAT_EQ(cb->token_logprobs[0].top[1].logprob, -2.0f);
  }
  // Old senders: every new field is optional and keeps its default.
  auto old = decode<generate_request>(R"({"request_id":"a","prompt":"x"})", wire_format::json);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->max_tokens, 0u);
  EXPECT_DOUBLE_EQ(old->sampling.repetition_penalty, 1.0);
  EXPECT_TRUE(old->sampling.logit_bias.empty());
}

TEST(codec, format_detection_prefers_header_then_body) {
  EXPECT_EQ(detect_format("application/json", "\x81"), wire_format::json);
  EXPECT_EQ(detect_format("", "  {\"a\":1}"), wire_format::json);
  EXPECT_EQ(detect_format("", "\x81\xa1" "a\x01"), wire_format::msgpack);
  EXPECT_EQ(detect_format("application/msgpack", "{"), wire_format::msgpack);
  // No message is a msgpack array or blank: such a body is JSON and gets JSON's error, which names the problem.
  EXPECT_EQ(detect_format("", "[1,2]"), wire_format::json);
  EXPECT_EQ(detect_format("", " \n "), wire_format::json);
  EXPECT_EQ(detect_format("", ""), wire_format::msgpack);
  auto arr = decode<cancel_request>("[1,2]", detect_format("", "[1,2]"));
  ASSERT_FALSE(arr);
  EXPECT_EQ(arr.err().message.find("trailing bytes"), std::string::npos) << arr.err().message;
}

TEST(codec, unknown_fields_are_ignored) {
  auto r = decode<cancel_request>(R"({"request_id":"x","future_field":[1,2,{"a":null}]})", wire_format::json);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request_id, "x");
}

TEST(codec, missing_required_field_names_it) {
  // generate_request's request_id is optional (the router names one); a cancel needs one.
  EXPECT_TRUE(decode<generate_request>(R"({"prompt":"hi"})", wire_format::json).ok());
  auto r = decode<cancel_request>(R"({"reason":"x"})", wire_format::json);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_request);
  EXPECT_NE(r.err().message.find("request_id"), std::string::npos);
}

TEST(codec, wrong_type_names_the_field_path) {
  auto r = decode<generate_request>(R"({"request_id":"a","sampling":{"top_k":"many"}})", wire_format::json);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("sampling.top_k"), std::string::npos);
  auto neg = decode<generate_request>(R"({"request_id":"a","max_tokens":-3})", wire_format::json);
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.err().message.find("max_tokens"), std::string::npos);
  auto big = decode<generate_request>(R"({"request_id":"a","max_tokens":99999999999})", wire_format::json);
  EXPECT_FALSE(big.ok());
}

TEST(codec, malformed_and_truncated_bodies_are_errors) {
  EXPECT_EQ(decode<generate_request>("{\"request_id\":", wire_format::json).err().code, errc::bad_request);
  EXPECT_EQ(decode<generate_request>("[1,2]", wire_format::json).err().code, errc::bad_request);
  auto good = encode(sample_request(), wire_format::msgpack);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    auto r = decode<generate_request>(std::string_view(good.data(), cut), wire_format::msgpack);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(decode<generate_request>("\xc1", wire_format::msgpack).ok());      // reserved byte
  EXPECT_FALSE(decode<generate_request>("\x93\x01\x02\x03", wire_format::msgpack).ok());  // array, not map
}

TEST(codec, oversize_and_too_deep_bodies_are_rejected) {
  decode_limits lim;
  lim.max_bytes = 64;
  std::string big(100, ' ');
  EXPECT_EQ(decode<generate_request>(big, wire_format::json, lim).err().code, errc::payload_too_large);
  EXPECT_EQ(decode<generate_request>(big, wire_format::msgpack, lim).err().code, errc::payload_too_large);
  std::string deep = "{\"request_id\":\"a\",\"x\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EXPECT_EQ(decode<generate_request>(deep, wire_format::json).err().code, errc::bad_request);
  std::string mp_deep(10000, '\x91');  // 10000 nested one-element arrays
  mp_deep.push_back('\x01');
  EXPECT_FALSE(decode<generate_request>(mp_deep, wire_format::msgpack).ok());
}

TEST(codec, huge_claimed_container_in_tiny_body_is_rejected) {
  std::string claim = "\xdd\xff\xff\xff\xff";  // array32 claiming 4G elements
  EXPECT_FALSE(decode<generate_request>(claim, wire_format::msgpack).ok());
}
