// cluster/tests/quantize_option_test.cpp — `--quantize none|int8`: the flag parses, an unknown value
// is a clear error at parse time and from make_engine (naming the value and the choices), int8 reaches
// the native engine's weights, and int8 with --device cuda is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <unistd.h>

#include "backends/native/mkmodel.hpp"
#include "backends/native/native_engine.hpp"
#include "cluster/process_options.hpp"

namespace {

namespace native = yard::backends::native;

struct model_folder {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("yard-quantize-test-" + std::to_string(::getpid()));
  model_folder() {
    native::mkmodel_options mo;
    mo.out = dir.string();
    auto st = native::write_random_model(mo);
    if (!st) throw std::runtime_error(st.err().describe());
  }
  ~model_folder() { std::filesystem::remove_all(dir); }
};

// Parses `args` with the engine flags; returns the CLI error text ("" when it parsed).
std::string parse(std::vector<std::string> args, yard::cluster::engine_options& o) {
  CLI::App app{"test"};
  yard::cluster::add_engine_flags(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(quantize_option, flag_defaults_to_none_and_accepts_int8) {
  yard::cluster::engine_options o;
  EXPECT_EQ(parse({}, o), "");
  EXPECT_EQ(o.quantize, "none");
  EXPECT_EQ(parse({"--quantize", "int8"}, o), "");
  EXPECT_EQ(o.quantize, "int8");
}

TEST(quantize_option, unknown_value_is_a_clear_error) {
  yard::cluster::engine_options o;
  auto msg = parse({"--quantize", "int4"}, o);
  EXPECT_NE(msg.find("'int4'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("none or int8"), std::string::npos) << msg;
  // The same check where options arrive without the command line.
  model_folder m;
  yard::cluster::engine_options eng;
  eng.engine = "native";
  eng.model = m.dir.string();
  eng.device = "cpu";
  eng.quantize = "q4_0";
  auto e = yard::cluster::make_engine(eng);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.err().code, yard::errc::bad_request);
  EXPECT_NE(e.err().message.find("--quantize value 'q4_0'"), std::string::npos) << e.err().message;
}

TEST(quantize_option, int8_reaches_the_native_engine_weights) {
  model_folder m;
  yard::backends::native_engine_options no;
  no.quantize = native::weight_quant::int8;
  auto e = yard::backends::native_engine::open(m.dir.string(), no);
  ASSERT_TRUE(e) << e.err().describe();
  EXPECT_EQ((*e)->weights().layers[0].w_up.type, native::wdtype::i8);
  EXPECT_EQ((*e)->weights().lm_head.type, native::wdtype::i8);
  auto plain = yard::backends::native_engine::open(m.dir.string());
  ASSERT_TRUE(plain);
  EXPECT_EQ((*plain)->weights().layers[0].w_up.type, native::wdtype::f32);
  EXPECT_LT((*e)->weights().weight_bytes * 3, (*plain)->weights().weight_bytes);
  no.device = "cuda";
  auto cuda = yard::backends::native_engine::open(m.dir.string(), no);
  ASSERT_FALSE(cuda);
  EXPECT_NE(cuda.err().message.find("CPU engine"), std::string::npos) << cuda.err().message;
}

}  // namespace
