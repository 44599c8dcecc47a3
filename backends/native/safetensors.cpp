#include "backends/native/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/log.hpp"

namespace yard::backends::native {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view dtype_name(dtype d) {
  switch (d) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
  }
  return "?";
}

result<dtype> parse_dtype(std::string_view s) {
  if (s == "F32" || s == "f32" || s == "float32") return dtype::f32;
  if (s == "F16" || s == "f16" || s == "float16") return dtype::f16;
  if (s == "BF16" || s == "bf16" || s == "bfloat16") return dtype::bf16;
  return make_error(errc::unsupported, "unsupported dtype '" + std::string(s) + "' (F32, F16, BF16 are supported)");
}

std::size_t dtype_size(dtype d) { return d == dtype::f32 ? 4 : 2; }

float f16_to_f32(std::uint16_t h) {
  std::uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {  // subnormal: normalise
      int e = -1;
      do { ++e; man <<= 1; } while (!(man & 0x400));
      bits = sign | ((127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint16_t f32_to_f16(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::int32_t exp = static_cast<std::int32_t>((x >> 23) & 0xff) - 127 + 15;
  std::uint32_t man = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0));
  if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<std::uint16_t>(sign);
    man |= 0x800000u;
    std::uint32_t shift = static_cast<std::uint32_t>(14 - exp);
    std::uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = (static_cast<std::uint32_t>(exp) << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: still correct
  return static_cast<std::uint16_t>(sign | half);
}

float bf16_to_f32(std::uint16_t h) {
  std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint16_t f32_to_bf16(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40);  // NaN stays NaN
  x += 0x7fffu + ((x >> 16) & 1);
  return static_cast<std::uint16_t>(x >> 16);
}

std::int64_t tensor_view::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void tensor_view::to_f32(float* out) const {
  auto n = static_cast<std::size_t>(numel());
  if (type == dtype::f32) {
    std::memcpy(out, data, n * 4);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    out[i] = type == dtype::f16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

class mapped_file {
 public:
  ~mapped_file() {
    if (base_ && base_ != MAP_FAILED) ::munmap(base_, size_);
  }
  static result<std::unique_ptr<mapped_file>> open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errc::io_error, "cannot open '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return make_error(errc::io_error, "cannot stat '" + path + "'");
    }
    auto f = std::make_unique<mapped_file>();
    f->size_ = static_cast<std::size_t>(st.st_size);
    if (f->size_ > 0) {
      f->base_ = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (f->base_ == MAP_FAILED) {
        ::close(fd);
        f->base_ = nullptr;
        return make_error(errc::io_error, "cannot mmap '" + path + "'");
      }
    }
    ::close(fd);
    return f;
  }
  const std::byte* data() const { return static_cast<const std::byte*>(base_); }
  std::size_t size() const { return size_; }

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

tensor_set::~tensor_set() = default;

const tensor_view* tensor_set::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

status tensor_set::add_file(const std::string& path, const std::vector<std::string>* expected) {
  auto mf = mapped_file::open(path);
  if (!mf) return mf.err();
  const auto& f = **mf;
  auto bad = [&](const std::string& what) { return make_error(errc::corrupt, "safetensors '" + path + "': " + what); };
  if (f.size() < 8) return bad("file of " + std::to_string(f.size()) + " bytes is shorter than the 8-byte header length");
  std::uint64_t hlen;
  std::memcpy(&hlen, f.data(), 8);
  if (hlen > f.size() - 8) return bad("header length " + std::to_string(hlen) + " runs past the end of the file (truncated?)");
  json header = json::parse(reinterpret_cast<const char*>(f.data()) + 8, reinterpret_cast<const char*>(f.data()) + 8 + hlen,
                            nullptr, false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a valid JSON object");
  const std::byte* base = f.data() + 8 + hlen;
  std::size_t data_size = f.size() - 8 - hlen;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    auto tbad = [&](const std::string& what) { return bad("tensor '" + name + "': " + what); };
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string()) return tbad("missing field 'dtype'");
    if (!info.contains("shape") || !info["shape"].is_array()) return tbad("missing field 'shape'");
    if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
      return tbad("missing field 'data_offsets'");
    auto dt = parse_dtype(info["dtype"].get<std::string>());
    if (!dt) return tbad(dt.err().message);
    tensor_view v;
    v.name = name;
    v.type = *dt;
    v.file = path;
    for (auto& d : info["shape"]) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) return tbad("bad field 'shape'");
      v.shape.push_back(d.get<std::int64_t>());
    }
    auto& off = info["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) return tbad("bad field 'data_offsets'");
    auto b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
    if (b > e || e > data_size)
      return tbad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") run past the " +
                  std::to_string(data_size) + " data bytes (truncated?)");
    v.nbytes = e - b;
    if (v.nbytes != static_cast<std::uint64_t>(v.numel()) * dtype_size(v.type))
      return tbad("data_offsets span " + std::to_string(v.nbytes) + " bytes but shape and dtype need " +
                  std::to_string(v.numel() * dtype_size(v.type)));
    v.data = base + b;
    if (tensors_.count(name)) return tbad("appears in more than one file");
    tensors_.emplace(name, std::move(v));
  }
  if (expected) {
    for (const auto& n : *expected)
      if (!tensors_.count(n)) return bad("tensor '" + n + "' listed in the index is missing from the file");
  }
  files_.push_back(std::move(*mf));
  return status::success();
}

result<std::unique_ptr<tensor_set>> tensor_set::open_file(const std::string& path) {
  std::unique_ptr<tensor_set> s(new tensor_set());
  if (auto st = s->add_file(path, nullptr); !st) return st.err();
  return s;
}

result<std::unique_ptr<tensor_set>> tensor_set::open_dir(const std::string& dir) {
  std::unique_ptr<tensor_set> s(new tensor_set());
  auto single = fs::path(dir) / "model.safetensors";
  auto index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    if (auto st = s->add_file(single.string(), nullptr); !st) return st.err();
    return s;
  }
  if (!fs::exists(index))
    return make_error(errc::not_found, "no model.safetensors or model.safetensors.index.json in '" + dir + "'");
  std::ifstream in(index);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    return make_error(errc::corrupt, "'" + index.string() + "': missing or invalid field 'weight_map'");
  std::map<std::string, std::vector<std::string>> by_file;
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) return make_error(errc::corrupt, "'" + index.string() + "': weight_map['" + name + "'] is not a file name");
    by_file[file.get<std::string>()].push_back(name);
  }
  for (const auto& [file, names] : by_file) {
    if (file.find('/') != std::string::npos)
      return make_error(errc::corrupt, "'" + index.string() + "': shard name '" + file + "' must be a plain file name");
    if (auto st = s->add_file((fs::path(dir) / file).string(), &names); !st) return st.err();
  }
  return s;
}

status write_safetensors(const std::string& path, const std::vector<tensor_to_write>& tensors, dtype type) {
  json header = json::object();
  std::uint64_t off = 0;
  for (const auto& t : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    std::uint64_t bytes = static_cast<std::uint64_t>(n) * dtype_size(type);
    header[t.name] = {{"dtype", dtype_name(type)}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(errc::io_error, "cannot write '" + path + "'");
  std::uint64_t hl = h.size();
  out.write(reinterpret_cast<const char*>(&hl), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  std::vector<char> buf;
  for (const auto& t : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    buf.resize(static_cast<std::size_t>(n) * dtype_size(type));
    for (std::int64_t i = 0; i < n; ++i) {
      if (type == dtype::f32) std::memcpy(buf.data() + 4 * i, &t.values[i], 4);
      else {
        std::uint16_t v = type == dtype::f16 ? f32_to_f16(t.values[i]) : f32_to_bf16(t.values[i]);
        std::memcpy(buf.data() + 2 * i, &v, 2);
      }
    }
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
  if (!out) return make_error(errc::io_error, "write to '" + path + "' failed");
  return status::success();
}

status write_safetensors_dir(const std::string& dir, const std::vector<tensor_to_write>& tensors, dtype type,
                             int n_shards) {
  if (n_shards <= 1) return write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, type);
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  std::size_t per = (tensors.size() + n_shards - 1) / n_shards;
  for (int s = 0; s < n_shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    std::vector<tensor_to_write> part;
    for (std::size_t i = s * per; i < std::min(tensors.size(), (s + 1) * per); ++i) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].name] = name;
    }
    if (auto st = write_safetensors((fs::path(dir) / name).string(), part, type); !st) return st;
  }
  std::ofstream out(fs::path(dir) / "model.safetensors.index.json");
  out << index.dump(2);
  return out ? status::success() : status(make_error(errc::io_error, "cannot write the safetensors index in '" + dir + "'"));
}

}  // namespace yard::backends::native
