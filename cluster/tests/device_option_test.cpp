// cluster/tests/device_option_test.cpp — `--device` / YARD_DEVICE: names resolve to cpu or
// cuda, cuda:N narrows CUDA_VISIBLE_DEVICES (or must be in it), bad names are errors that
// name the source; a native engine asked for cuda on a machine without a usable GPU gets
// a clear error, not a crash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "backends/native/cuda/cuda_device.hpp"
#include "backends/native/mkmodel.hpp"
#include "cluster/process_options.hpp"

namespace {

using yard::cluster::resolve_device;

// Sets (or unsets) an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~scoped_env() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(device_option, cpu_is_the_default_and_yard_device_is_read_when_no_flag_is_given) {
  scoped_env d("YARD_DEVICE", nullptr);
  scoped_env v("CUDA_VISIBLE_DEVICES", nullptr);
  EXPECT_EQ(*resolve_device(""), "cpu");
  EXPECT_EQ(*resolve_device("cpu"), "cpu");
  EXPECT_EQ(*resolve_device("cuda"), "cuda");
  {
    scoped_env set("YARD_DEVICE", "cuda");
    EXPECT_EQ(*resolve_device(""), "cuda");
    EXPECT_EQ(*resolve_device("cpu"), "cpu") << "the flag wins over the environment";
  }
}

TEST(device_option, cuda_n_narrows_the_visible_devices_to_n) {
  scoped_env d("YARD_DEVICE", nullptr);
  {
    scoped_env v("CUDA_VISIBLE_DEVICES", nullptr);
    EXPECT_EQ(*resolve_device("cuda:3"), "cuda");
    EXPECT_STREQ(std::getenv("CUDA_VISIBLE_DEVICES"), "3");
  }
  {
    // What the node agent sets for a worker group on device cuda:1.
    scoped_env v("CUDA_VISIBLE_DEVICES", "1");
    scoped_env set("YARD_DEVICE", "cuda:1");
    EXPECT_EQ(*resolve_device(""), "cuda");
    EXPECT_STREQ(std::getenv("CUDA_VISIBLE_DEVICES"), "1");
  }
  {
    scoped_env v("CUDA_VISIBLE_DEVICES", "0,2");
    EXPECT_EQ(*resolve_device("cuda:2"), "cuda");
    EXPECT_STREQ(std::getenv("CUDA_VISIBLE_DEVICES"), "2");
  }
}

TEST(device_option, bad_names_are_errors_that_name_where_they_came_from) {
  scoped_env v("CUDA_VISIBLE_DEVICES", "0,2");
  auto not_visible = resolve_device("cuda:1");
  ASSERT_FALSE(not_visible);
  EXPECT_NE(not_visible.err().message.find("CUDA_VISIBLE_DEVICES=0,2"), std::string::npos) << not_visible.err().message;
  for (const char* bad : {"tpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", "cuda:12345"}) {
    auto r = resolve_device(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.err().message.find("--device"), std::string::npos) << r.err().message;
  }
  scoped_env set("YARD_DEVICE", "gpu0");
  auto env = resolve_device("");
  ASSERT_FALSE(env);
  EXPECT_NE(env.err().message.find("YARD_DEVICE 'gpu0'"), std::string::npos) << env.err().message;
}

TEST(device_option, a_native_engine_on_cuda_without_a_usable_gpu_is_a_clear_error) {
  if (yard::backends::native::cuda_available()) GTEST_SKIP() << "a CUDA device is usable here: covered by the GPU tests";
  scoped_env d("YARD_DEVICE", nullptr);
  scoped_env v("CUDA_VISIBLE_DEVICES", nullptr);
  auto dir = std::filesystem::temp_directory_path() / ("yard-device-test-" + std::to_string(::getpid()));
  yard::backends::native::mkmodel_options mo;
  mo.out = dir.string();
  ASSERT_TRUE(yard::backends::native::write_random_model(mo));
  yard::cluster::engine_options eng;
  eng.engine = "native";
  eng.model = dir.string();
  eng.device = "cuda";
  auto e = yard::cluster::make_engine(eng);
  ASSERT_FALSE(e);
  EXPECT_NE(e.err().message.find("cuda"), std::string::npos) << e.err().message;
  eng.device = "cpu";
  EXPECT_TRUE(yard::cluster::make_engine(eng)) << "the same folder opens on the CPU";
  std::filesystem::remove_all(dir);
}

}  // namespace
