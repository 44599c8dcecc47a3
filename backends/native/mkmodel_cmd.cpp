// backends/native/mkmodel_cmd.cpp — `yard mkmodel`: writes a random-weight model folder.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "backends/native/mkmodel.hpp"

namespace yard::cmd {

int run_mkmodel(int argc, char** argv) {
  CLI::App app{"write a random-weight Hugging Face Llama-family model folder"};
  backends::native::mkmodel_options o;
  std::string dt = "f32";
  app.add_option("--preset", o.preset, "tiny | small | 100m")->check(CLI::IsMember({"tiny", "small", "100m"}));
  app.add_option("--out", o.out, "output folder")->required();
  app.add_option("--seed", o.seed, "weight seed (default 0)");
  app.add_option("--dtype", dt, "f32 | f16 | bf16")->check(CLI::IsMember({"f32", "f16", "bf16"}));
  app.add_option("--shards", o.shards, "number of safetensors shards (default 1)")->check(CLI::Range(1, 64));
  app.add_option("--family", o.family, "llama | qwen2 (default llama)")->check(CLI::IsMember({"llama", "qwen2"}));
  app.add_option("--rope-scaling", o.rope_scaling, "'' | llama3 | linear")->check(CLI::IsMember({"", "llama3", "linear"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.type = *backends::native::parse_dtype(dt);
  auto st = backends::native::write_random_model(o);
  if (!st) {
    std::fprintf(stderr, "mkmodel: %s\n", st.err().describe().c_str());
    return 1;
  }
  std::printf("mkmodel: wrote %s preset to %s (dtype %s, seed %llu)\n", o.preset.c_str(), o.out.c_str(), dt.c_str(),
              static_cast<unsigned long long>(o.seed));
  return 0;
}

}  // namespace yard::cmd
