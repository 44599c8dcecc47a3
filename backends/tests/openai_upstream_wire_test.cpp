// What an external engine worker sends an OpenAI-compatible server and how it
// reads the answers (backends/external/openai_upstream_wire, upstream_load):
// request bodies, SSE framing across any split, the chunks of vLLM, SGLang and
// llama-server, in-stream and HTTP errors, and load from each one's metrics.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "backends/external/openai_upstream_wire.hpp"
#include "backends/external/upstream_load.hpp"

using namespace yard;
using namespace yard::backends::external;
using nlohmann::json;

TEST(openai_upstream_wire, body_sends_prompt_and_resumed_tokens_as_ids_with_the_budget_left) {
  backends::engine_request r;
  r.request_id = "r1";
  r.prompt = {1, 2, 3};
  r.resume_tokens = {7, 8};
  r.max_tokens = 10;
  r.stop = {"\n\n"};
  r.stop_token_ids = {99};
  r.sampling.min_tokens = 4;
  auto j = json::parse(completion_body(r, "m", 4096));
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["prompt"], json::array({1, 2, 3, 7, 8}));
  EXPECT_EQ(j["max_tokens"], 8);
  EXPECT_EQ(j["min_tokens"], 2);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["return_token_ids"], true);
  EXPECT_EQ(j["stop"], json::array({"\n\n"}));
  EXPECT_EQ(j["stop_token_ids"], json::array({99}));
  EXPECT_EQ(j["temperature"], 0.0);
  // Defaults are not sent: a strict server never sees a field it may not know.
  for (const char* k : {"top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias",
                        "logprobs"})
    EXPECT_FALSE(j.contains(k)) << k;
}

TEST(openai_upstream_wire, body_carries_every_sampling_field_that_differs_from_its_default) {
  backends::engine_request r;
  r.prompt = {5};
  r.max_tokens = 0;
  r.sampling.temperature = 0.7;
  r.sampling.top_p = 0.9;
  r.sampling.top_k = 40;
  r.sampling.seed = 11;
  r.sampling.presence_penalty = 0.5;
  r.sampling.frequency_penalty = -0.5;
  r.sampling.repetition_penalty = 1.1;
  r.sampling.logit_bias = {{42, -100.0f}};
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 3;
  auto j = json::parse(completion_body(r, "m", 100));
  EXPECT_EQ(j["max_tokens"], 99);  // budget 0 = to the end of the server's context
  EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(j["top_p"].get<double>(), 0.9);
  EXPECT_EQ(j["top_k"], 40);
  EXPECT_EQ(j["seed"], 11);
  EXPECT_DOUBLE_EQ(j["presence_penalty"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["frequency_penalty"].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(j["repetition_penalty"].get<double>(), 1.1);
  EXPECT_EQ(j["logit_bias"]["42"], -100.0);
  EXPECT_EQ(j["logprobs"], 3);
  // Context unknown and no budget: the server's own default applies.
  EXPECT_FALSE(json::parse(completion_body(r, "m", 0)).contains("max_tokens"));
}

TEST(openai_upstream_wire, reads_vllm_chunks_with_token_ids_logprobs_finish_and_usage) {
  auto d = parse_stream_payload(
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" world",)"
      R"("token_ids":[1917],"logprobs":{"tokens":[" world"],"token_logprobs":[-0.25],"top_logprobs":[{" world":-0.25,"!":-2.5}],)"
      R"("text_offset":[5]},"finish_reason":null,"stop_reason":null}],"usage":null})");
  ASSERT_TRUE(d.ok()) << d.err().describe();
  EXPECT_EQ(d->text, " world");
  ASSERT_TRUE(d->token_ids.has_value());
  EXPECT_EQ(*d->token_ids, std::vector<msg::token_id>{1917});
  ASSERT_EQ(d->logprobs.size(), 1u);
  EXPECT_EQ(d->logprobs[0].token, 1917u);
  EXPECT_FLOAT_EQ(d->logprobs[0].logprob, -0.25f);
  EXPECT_EQ(d->logprobs[0].top.size(), 2u);
  EXPECT_FALSE(d->finish.has_value());

  auto fin = parse_stream_payload(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})");
  ASSERT_TRUE(fin.ok());
  EXPECT_EQ(fin->finish, msg::finish_kind::length);
  EXPECT_FALSE(fin->token_ids.has_value());  // a server without return_token_ids

  auto usage = parse_stream_payload(
      R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8}}})");
  ASSERT_TRUE(usage.ok());
  ASSERT_TRUE(usage->usage.has_value());
  EXPECT_EQ(usage->usage->prompt_tokens, 12u);
  EXPECT_EQ(usage->usage->completion_tokens, 5u);
  EXPECT_EQ(usage->usage->cached_tokens, 8u);

  auto done = parse_stream_payload("[DONE]");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->done);
  EXPECT_EQ(finish_of("abort"), msg::finish_kind::cancelled);
  EXPECT_EQ(finish_of("stop"), msg::finish_kind::stop);
  EXPECT_EQ(finish_of("eos"), msg::finish_kind::stop);
}

TEST(openai_upstream_wire, in_stream_errors_and_malformed_events_are_errors_not_crashes) {
  auto e = parse_stream_payload(R"({"error":{"object":"error","message":"max_tokens is too large","type":"BadRequestError","code":400}})");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->server_error.has_value());
  EXPECT_EQ(e->server_error->code, errc::bad_request);
  EXPECT_NE(e->server_error->message.find("max_tokens is too large"), std::string::npos);
  auto oom = parse_stream_payload(R"({"error":{"message":"engine dead","code":500}})");
  ASSERT_TRUE(oom.ok());
  EXPECT_EQ(oom->server_error->code, errc::unavailable);  // tried elsewhere
  for (const char* bad : {"{", "[1,2]", "nonsense", R"({"foo":1})", R"({"choices":[7]})", R"({"choices":[{"token_ids":[-1]}]})"}) {
    auto r = parse_stream_payload(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, errc::corrupt) << bad;
  }
}

TEST(openai_upstream_wire, sse_events_survive_any_split_crlf_comments_and_multiline_data) {
  const std::string stream = ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata:[DONE]\n\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    sse_splitter s;
    auto out = s.feed(std::string_view(stream).substr(0, cut));
    auto rest = s.feed(std::string_view(stream).substr(cut));
    out.insert(out.end(), rest.begin(), rest.end());
    ASSERT_EQ(out.size(), 3u) << "split at " << cut;
    EXPECT_EQ(out[0], "{\"a\":1}");
    EXPECT_EQ(out[1], "{\"b\":\n2}");
    EXPECT_EQ(out[2], "[DONE]");
    EXPECT_EQ(s.pending(), 0u);
  }
  sse_splitter bytewise;
  std::vector<std::string> all;
  for (char c : stream)
    for (auto& p : bytewise.feed(std::string_view(&c, 1))) all.push_back(p);
  EXPECT_EQ(all.size(), 3u);
}

TEST(openai_upstream_wire, http_errors_say_whose_fault_they_are) {
  EXPECT_EQ(http_error(400, R"({"error":{"message":"bad prompt"}})").code, errc::bad_request);
  EXPECT_NE(http_error(400, R"({"error":{"message":"bad prompt"}})").message.find("bad prompt"), std::string::npos);
  EXPECT_EQ(http_error(422, R"({"detail":[{"msg":"field required"}]})").code, errc::bad_request);
  EXPECT_NE(http_error(422, R"({"detail":"field required"})").message.find("field required"), std::string::npos);
  EXPECT_EQ(http_error(404, "no such model").code, errc::not_found);
  EXPECT_EQ(http_error(429, "slow down").code, errc::rate_limited);
  EXPECT_EQ(http_error(503, "").code, errc::unavailable);
  EXPECT_EQ(http_error(500, "<html>oops</html>").code, errc::unavailable);
  EXPECT_EQ(http_error(401, "").code, errc::unavailable);
}

TEST(upstream_load, reads_each_engines_metric_names) {
  auto vllm = load_from_metrics(parse_prometheus_text(
      "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n"
      "vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 2.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 4.0\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
      "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.25\n"));
  EXPECT_STREQ(vllm.dialect, "vllm");
  EXPECT_EQ(vllm.running, 5.0);
  EXPECT_EQ(vllm.waiting, 4.0);
  EXPECT_DOUBLE_EQ(*vllm.kv_used, 375.0);  // mean of the two ranks' usage, per mille
  EXPECT_DOUBLE_EQ(*vllm.kv_capacity, 1000.0);
  auto v0 = load_from_metrics(parse_prometheus_text("vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.1\n"));
  EXPECT_DOUBLE_EQ(*v0.kv_used, 100.0);

  auto sg = load_from_metrics(parse_prometheus_text(
      "sglang:num_running_reqs{model_name=\"m\"} 7\nsglang:num_queue_reqs{model_name=\"m\"} 1\nsglang:token_usage{model_name=\"m\"} 0.9\n"));
  EXPECT_STREQ(sg.dialect, "sglang");
  EXPECT_EQ(sg.running, 7.0);
  EXPECT_EQ(sg.waiting, 1.0);
  EXPECT_DOUBLE_EQ(*sg.kv_used, 900.0);

  auto lc = load_from_metrics(parse_prometheus_text(
      "llamacpp:requests_processing 2\nllamacpp:requests_deferred 6\nllamacpp:kv_cache_usage_ratio 0.125\n"));
  EXPECT_STREQ(lc.dialect, "llama.cpp");
  EXPECT_EQ(lc.waiting, 6.0);

  auto yard = load_from_metrics(parse_prometheus_text(
      "yard_worker_active_requests{worker=\"w0\",role=\"both\",model=\"m\"} 1\n"
      "yard_worker_active_requests{worker=\"w1\",role=\"both\",model=\"m\"} 2\n"
      "yard_worker_queued_requests{worker=\"w0\",role=\"both\",model=\"m\"} 0\n"
      "yard_worker_kv_blocks_active{worker=\"w0\",role=\"both\",model=\"m\"} 10\n"
      "yard_worker_kv_blocks_capacity{worker=\"w0\",role=\"both\",model=\"m\"} 100\n"));
  EXPECT_STREQ(yard.dialect, "switchyard");
  EXPECT_EQ(yard.running, 3.0);
  EXPECT_EQ(yard.kv_used, 10.0);
  EXPECT_EQ(yard.kv_capacity, 100.0);

  auto none = load_from_metrics(parse_prometheus_text("process_cpu_seconds_total 12\n"));
  EXPECT_STREQ(none.dialect, "unknown");
  EXPECT_FALSE(none.running.has_value());
}

TEST(upstream_load, the_text_parser_skips_bad_lines_and_handles_quoted_labels_and_timestamps) {
  auto m = parse_prometheus_text(
      "a{l=\"x}y\",m=\"q\\\"z\"} 2 1700000000000\n"
      "a 3\r\n"
      "   \n"
      "{broken} 1\n"
      "b{unterminated=\"x 1\n"
      "c notanumber\n"
      "d NaN\n"
      "e +Inf\n");
  EXPECT_DOUBLE_EQ(m.sum.at("a"), 5.0);
  EXPECT_EQ(m.series.at("a"), 2);
  EXPECT_EQ(m.malformed_lines, 3u);
  EXPECT_FALSE(m.sum.count("d"));  // NaN samples are skipped, not counted as bad
  EXPECT_TRUE(std::isinf(m.sum.at("e")));
}

// What a hostile or broken server sends is bounded by what was asked and what fits: ids and counts past 32 bits,
// more alternatives or logprob entries than asked, a vLLM abort, an error text of megabytes, an endless event.
TEST(openai_upstream_wire, out_of_range_numbers_and_oversized_parts_are_bounded) {
  auto wide = parse_stream_payload(R"({"choices":[{"index":0,"text":"a","token_ids":[4294967393]}]})");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.err().message.find("4294967393"), std::string::npos);
  for (const char* wrong_type : {R"({"choices":[{"index":0,"text":12345}]})", R"({"choices":[{"index":0,"text":"a","token_ids":"97"}]})"})
    EXPECT_FALSE(parse_stream_payload(wrong_type).ok()) << wrong_type << ": was dropped without a word";
  auto usage = parse_stream_payload(
      R"({"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":-3,"prompt_tokens_details":{"cached_tokens":1099511627779}}})");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->usage->prompt_tokens, 4u);
  EXPECT_EQ(usage->usage->completion_tokens, 0u);
  EXPECT_EQ(usage->usage->cached_tokens, 0u) << "2^40 + 3 must not wrap to 3";
  auto lp = parse_stream_payload(
      R"({"choices":[{"index":0,"text":"a","token_ids":[97],"logprobs":{"tokens":["a","b","c"],)"
      R"("token_logprobs":[-0.1,-0.2,-0.3],"top_logprobs":[{"a":-0.1,"b":-2,"c":-3,"d":-4}]}}]})",
      /*max_top=*/2);
  ASSERT_TRUE(lp.ok());
  ASSERT_EQ(lp->logprobs.size(), 1u) << "one entry per token id";
  EXPECT_EQ(lp->logprobs[0].top.size(), 2u);
  auto abort = parse_stream_payload(R"({"choices":[{"index":0,"text":"","finish_reason":"abort"}]})");
  ASSERT_TRUE(abort.ok());
  ASSERT_TRUE(abort->server_error.has_value());
  EXPECT_EQ(abort->server_error->code, errc::unavailable);
  EXPECT_FALSE(abort->finish.has_value());
  // An error text of 3 MB is cut to about 2000 bytes, not inside a UTF-8 character.
  std::string big = R"({"error":{"message":")";
  for (int i = 0; i < 1000000; ++i) big += "\xc3\xa9";  // é
  big += R"("}})";
  auto e = http_error(500, big);
  EXPECT_LT(e.message.size(), 2100u);
  EXPECT_EQ(e.message.substr(e.message.size() - 5), "\xc3\xa9...");
}

TEST(openai_upstream_wire, sse_events_over_the_limit_overflow_and_long_ones_under_it_arrive_whole) {
  sse_splitter small(1000);
  EXPECT_TRUE(small.feed("data: " + std::string(500, 'x')).empty());
  EXPECT_FALSE(small.overflowed());
  EXPECT_TRUE(small.feed(std::string(600, 'x')).empty());
  EXPECT_TRUE(small.overflowed());
  EXPECT_EQ(small.pending(), 0u) << "nothing held past the limit";
  EXPECT_TRUE(small.feed("\n\ndata: 1\n\n").empty()) << "an overflowed stream yields nothing more";
  sse_splitter whole_at_once(1000);
  EXPECT_TRUE(whole_at_once.feed("data: " + std::string(2000, 'x') + "\n\ndata: 2\n\n").empty());
  EXPECT_TRUE(whole_at_once.overflowed());
  // A 1 MiB event fed 100 bytes at a time (each byte scanned once) comes out whole, then the next one.
  sse_splitter big;
  const std::string stream = "data: " + std::string(1u << 20, 'z') + "\r\n\r\ndata: next\n\n";
  std::vector<std::string> out;
  for (std::size_t i = 0; i < stream.size(); i += 100)
    for (auto& p : big.feed(std::string_view(stream).substr(i, 100))) out.push_back(std::move(p));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].size(), 1u << 20);
  EXPECT_EQ(out[1], "next");
  EXPECT_FALSE(big.overflowed());
}

TEST(upstream_load, counts_are_clamped_not_wrapped) {
  auto l = load_from_metrics(parse_prometheus_text(
      "vllm:num_requests_running -5\nvllm:num_requests_waiting 1e308\nvllm:kv_cache_usage_perc 7\n"));
  EXPECT_FALSE(l.running.has_value()) << "a negative count is not one";
  ASSERT_TRUE(l.waiting.has_value());
  EXPECT_EQ(*l.waiting, 4294967295.0) << "an overloaded server must not look idle";
  EXPECT_DOUBLE_EQ(*l.kv_used, 1000.0);
  auto y = load_from_metrics(parse_prometheus_text(
      "yard_worker_active_requests 1\nyard_worker_kv_blocks_active 1e12\nyard_worker_kv_blocks_capacity 100\n"));
  EXPECT_EQ(*y.kv_used, 100.0) << "used never above capacity";
}
