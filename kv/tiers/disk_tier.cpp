// kv/tiers/disk_tier.cpp — see disk_tier.hpp.
#include "kv/tiers/disk_tier.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include "common/log.hpp"

namespace yard::kv::tiers {

// A fixed pool of threads running queued jobs in FIFO order; joins on destruction.
class io_pool {
 public:
  explicit io_pool(std::uint32_t n) {
    if (n == 0) n = 1;
    for (std::uint32_t i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~io_pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stop_ and drained
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

namespace {

constexpr char magic[4] = {'Y', 'K', 'V', 'B'};
constexpr std::uint16_t format_version = 1;
constexpr std::uint16_t flag_encrypted = 1;
constexpr std::size_t header_size = 64;
constexpr const char* suffix = ".ykvb";

struct header {
  std::uint16_t version = format_version;
  std::uint16_t flags = 0;
  std::uint64_t hash = 0;
  std::uint64_t length = 0;
  std::uint64_t checksum = 0;
  unsigned char nonce[12] = {};
  unsigned char tag[16] = {};
};

void put_le(unsigned char* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint64_t get_le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint64_t(p[i]) << (8 * i);
  return v;
}

void encode_header(const header& h, unsigned char* out) {
  std::memset(out, 0, header_size);
  std::memcpy(out, magic, 4);
  put_le(out + 4, h.version, 2);
  put_le(out + 6, h.flags, 2);
  put_le(out + 8, h.hash, 8);
  put_le(out + 16, h.length, 8);
  put_le(out + 24, h.checksum, 8);
  std::memcpy(out + 32, h.nonce, 12);
  std::memcpy(out + 44, h.tag, 16);
}

std::optional<header> decode_header(const unsigned char* in) {
  if (std::memcmp(in, magic, 4) != 0) return std::nullopt;
  header h;
  h.version = static_cast<std::uint16_t>(get_le(in + 4, 2));
  h.flags = static_cast<std::uint16_t>(get_le(in + 6, 2));
  if (h.version != format_version) return std::nullopt;
  h.hash = get_le(in + 8, 8);
  h.length = get_le(in + 16, 8);
  h.checksum = get_le(in + 24, 8);
  std::memcpy(h.nonce, in + 32, 12);
  std::memcpy(h.tag, in + 44, 16);
  return h;
}

std::string hex_name(block_hash h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool write_all(int fd, const void* p, std::size_t n, off_t off) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, c, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w; n -= static_cast<std::size_t>(w); off += w;
  }
  return true;
}

bool read_all(int fd, void* p, std::size_t n, off_t off) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::pread(fd, c, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r; n -= static_cast<std::size_t>(r); off += r;
  }
  return true;
}

// AES-256-GCM with the block hash (8 LE bytes) as associated data. Returns false on failure.
bool gcm(bool enc, const unsigned char* key, const unsigned char* nonce, block_hash hash,
         const std::byte* in, std::size_t n, std::byte* out, unsigned char* tag) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return false;
  unsigned char aad[8];
  put_le(aad, hash, 8);
  int len = 0;
  bool ok = (enc ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr)
                 : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            (enc ? EVP_EncryptInit_ex(ctx, nullptr, nullptr, key, nonce)
                 : EVP_DecryptInit_ex(ctx, nullptr, nullptr, key, nonce)) == 1 &&
            (enc ? EVP_EncryptUpdate(ctx, nullptr, &len, aad, 8) : EVP_DecryptUpdate(ctx, nullptr, &len, aad, 8)) == 1;
  const auto* ip = reinterpret_cast<const unsigned char*>(in);
  auto* op = reinterpret_cast<unsigned char*>(out);
  std::size_t done = 0;
  while (ok && done < n) {  // EVP takes int lengths
    int chunk = static_cast<int>(std::min<std::size_t>(n - done, 1 << 30));
    ok = (enc ? EVP_EncryptUpdate(ctx, op + done, &len, ip + done, chunk)
              : EVP_DecryptUpdate(ctx, op + done, &len, ip + done, chunk)) == 1;
    done += static_cast<std::size_t>(len);
  }
  if (ok) {
    if (enc) {
      ok = EVP_EncryptFinal_ex(ctx, op + done, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    } else {
      ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
           EVP_DecryptFinal_ex(ctx, op + done, &len) > 0;
    }
  }
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

}  // namespace

disk_tier::disk_tier(disk_tier_options opts) : opts_(std::move(opts)) {}

disk_tier::~disk_tier() {
  hold_writes_for_testing(false);
  pool_.reset();  // joins: finishes queued I/O first
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

result<std::unique_ptr<disk_tier>> disk_tier::open(disk_tier_options opts) {
  if (opts.dir.empty()) return make_error(errc::bad_request, "disk_tier: no directory");
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) return make_error(errc::io_error, "disk_tier: cannot create " + opts.dir.string() + ": " + ec.message());
  std::unique_ptr<disk_tier> t(new disk_tier(opts));
  if (opts.key_file) {
    std::ifstream f(*opts.key_file, std::ios::binary);
    if (!f) return make_error(errc::io_error, "disk_tier: cannot read key file " + opts.key_file->string());
    std::string k((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (k.size() != 32)
      return make_error(errc::bad_request, "disk_tier: key file must hold exactly 32 bytes, has " +
                                               std::to_string(k.size()));
    std::array<unsigned char, 32> key{};
    std::memcpy(key.data(), k.data(), 32);
    t->key_ = key;
  }
  t->dir_fd_ = ::open(opts.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  t->pool_ = std::make_unique<io_pool>(opts.io_threads);
  return t;
}

std::filesystem::path disk_tier::path_of(block_hash h) const { return opts_.dir / (hex_name(h) + suffix); }

void disk_tier::set_evict_callback(evict_fn fn) {
  std::lock_guard lk(mu_);
  on_evict_ = std::move(fn);
}

void disk_tier::disable(const std::string& why) {
  if (disabled_.exchange(true)) return;
  component_logger("kv.tiers")->error("G3 disabled: {} (dir {}); continuing without a disk tier", why,
                                      opts_.dir.string());
  std::vector<block_hash> dropped;
  evict_fn cb;
  {
    std::lock_guard lk(mu_);
    for (auto& [h, e] : map_) dropped.push_back(h);
    map_.clear();
    lru_.clear();
    stats_.bytes_held = 0;
    cb = on_evict_;
  }
  if (cb)
    for (auto h : dropped) cb(h);
}

void disk_tier::index_insert(block_hash h, std::uint64_t len) {
  std::vector<block_hash> victims;
  evict_fn cb;
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(h);
    if (it != map_.end()) {
      lru_.erase(it->second.pos);
      stats_.bytes_held -= it->second.len;
      map_.erase(it);
    }
    map_.emplace(h, entry{len, lru_.insert(lru_.end(), h)});
    stats_.bytes_held += len;
    while (map_.size() > opts_.capacity_blocks) {
      block_hash v = lru_.front();
      lru_.pop_front();
      stats_.bytes_held -= map_[v].len;
      map_.erase(v);
      ++stats_.evictions;
      victims.push_back(v);
    }
    cb = on_evict_;
  }
  for (auto v : victims) {
    ::unlink(path_of(v).c_str());
    if (cb) cb(v);
  }
}

void disk_tier::index_drop(block_hash h) {
  std::lock_guard lk(mu_);
  auto it = map_.find(h);
  if (it == map_.end()) return;
  lru_.erase(it->second.pos);
  stats_.bytes_held -= it->second.len;
  map_.erase(it);
}

status disk_tier::write_file(block_hash h, const bytes& data) {
  if (fail_writes_.load()) return make_error(errc::resource_exhausted, "write failed: No space left on device (injected)");
  header hd;
  hd.hash = h;
  hd.length = data.size();
  const bytes* payload = &data;
  bytes cipher;
  if (key_) {
    hd.flags |= flag_encrypted;
    if (RAND_bytes(hd.nonce, sizeof hd.nonce) != 1) return make_error(errc::internal, "RAND_bytes failed");
    cipher.resize(data.size());
    if (!gcm(true, key_->data(), hd.nonce, h, data.data(), data.size(), cipher.data(), hd.tag))
      return make_error(errc::internal, "AES-256-GCM encryption failed");
    payload = &cipher;
  }
  hd.checksum = XXH3_64bits(payload->data(), payload->size());
  unsigned char hbuf[header_size];
  encode_header(hd, hbuf);

  auto final_path = path_of(h);
  auto tmp = final_path;
  tmp += ".tmp." + std::to_string(tmp_counter_.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::io_error, "open " + tmp.string() + ": " + std::strerror(errno));
  bool ok = write_all(fd, hbuf, header_size, 0) && write_all(fd, payload->data(), payload->size(), header_size);
  int err = ok ? 0 : (errno ? errno : EIO);
  if (ok && opts_.sync_each_write && ::fdatasync(fd) != 0) { ok = false; err = errno; }
  if (::close(fd) != 0 && ok) { ok = false; err = errno; }
  if (ok && ::rename(tmp.c_str(), final_path.c_str()) != 0) { ok = false; err = errno; }
  if (!ok) {
    ::unlink(tmp.c_str());
    return make_error(err == ENOSPC ? errc::resource_exhausted : errc::io_error,
                      "write " + tmp.string() + ": " + std::strerror(err));
  }
  return {};
}

std::future<status> disk_tier::put_async(block_hash hash, bytes data) {
  auto p = std::make_shared<std::promise<status>>();
  auto f = p->get_future();
  if (disabled_.load()) {
    p->set_value(status{});
    return f;
  }
  pending_writes_.fetch_add(1);
  pool_->submit([this, p, hash, data = std::move(data)]() mutable {
    {
      std::unique_lock lk(hold_mu_);
      hold_cv_.wait(lk, [&] { return !hold_writes_; });
    }
    if (!disabled_.load()) {
      if (status s = write_file(hash, data); !s.ok()) {
        { std::lock_guard lk(mu_); ++stats_.errors; }
        disable(s.err().message);
      } else {
        { std::lock_guard lk(mu_); ++stats_.puts; }
        index_insert(hash, data.size());
      }
    }
    pending_writes_.fetch_sub(1);
    p->set_value(status{});  // a failed write degrades the tier; it is not the caller's error
  });
  return f;
}

std::optional<std::future<status>> disk_tier::try_put_async(block_hash hash, bytes data) {
  if (pending_writes_.load() >= std::max<std::size_t>(1, opts_.max_pending_writes)) {
    std::uint64_t n;
    {
      std::lock_guard lk(mu_);
      n = ++stats_.dropped;
    }
    if ((n & (n - 1)) == 0)  // the 1st, 2nd, 4th, 8th ... drop: visible, never a flood
      component_logger("kv.tiers")
          ->warn("G3 '{}': write queue full ({} blocks): offloaded block dropped ({} so far)", opts_.dir.string(),
                 opts_.max_pending_writes, n);
    return std::nullopt;
  }
  return put_async(hash, std::move(data));
}

void disk_tier::hold_writes_for_testing(bool on) {
  {
    std::lock_guard lk(hold_mu_);
    hold_writes_ = on;
  }
  hold_cv_.notify_all();
}

status disk_tier::put(block_hash hash, std::span<const std::byte> data) {
  return put_async(hash, bytes(data.begin(), data.end())).get();
}

// Reads the whole file at `fd` (size `size`) into `out` with O_DIRECT rules: an
// aligned buffer and aligned request lengths; the last read returns short at EOF.
static bool read_direct(int fd, std::size_t size, std::vector<unsigned char>& scratch, unsigned char*& data) {
  constexpr std::size_t align = 4096;
  std::size_t padded = (size + align - 1) / align * align;
  scratch.resize(padded + align);
  data = scratch.data() + (align - reinterpret_cast<std::uintptr_t>(scratch.data()) % align) % align;
  std::size_t got = 0;
  while (got < size) {
    ssize_t r = ::pread(fd, data + got, padded - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
    if (got % align != 0 && got < size) return false;  // a short read mid-file: not O_DIRECT rules
  }
  return true;
}

result<bytes> disk_tier::read_file(block_hash h, bool decrypt) {
  auto path = path_of(h);
  // O_DIRECT: a block is read once (onboarding, recovery), so it should not push other
  // data out of the page cache; a file system without it (tmpfs) gets a plain read.
  bool direct = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (fd < 0 && errno == EINVAL) {
    direct = false;
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) return make_error(errc::not_found, "open " + path.string() + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(header_size)) {
    ::close(fd);
    return make_error(errc::corrupt, path.string() + ": truncated header");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  // One buffer per I/O thread, kept: a fresh 2 MiB buffer per read costs more in page
  // faults than the read itself on a virtual machine.
  thread_local std::vector<unsigned char> scratch;
  unsigned char* file = nullptr;
  bool ok = false;
  if (direct) {
    ok = read_direct(fd, size, scratch, file);
  } else {
    scratch.resize(size);
    file = scratch.data();
    ok = read_all(fd, file, size, 0);
  }
  ::close(fd);
  if (!ok) return make_error(errc::io_error, path.string() + ": read failed");
  auto hd = decode_header(file);
  if (!hd) return make_error(errc::corrupt, path.string() + ": bad magic or version");
  if (hd->hash != h) return make_error(errc::corrupt, path.string() + ": header hash mismatch");
  if (static_cast<std::uint64_t>(size) != header_size + hd->length)
    return make_error(errc::corrupt, path.string() + ": torn file (size " + std::to_string(size) + ", header says " +
                                         std::to_string(header_size + hd->length) + ")");
  bytes payload(hd->length);
  std::memcpy(payload.data(), file + header_size, payload.size());
  if (XXH3_64bits(payload.data(), payload.size()) != hd->checksum)
    return make_error(errc::corrupt, path.string() + ": checksum mismatch");
  bool enc = hd->flags & flag_encrypted;
  if (decrypt && enc != key_.has_value())
    return make_error(errc::corrupt, path.string() + (enc ? ": encrypted but no key" : ": not encrypted but a key is set"));
  if (enc && decrypt) {
    bytes plain(payload.size());
    if (!gcm(false, key_->data(), hd->nonce, h, payload.data(), payload.size(), plain.data(), hd->tag))
      return make_error(errc::corrupt, path.string() + ": authentication failed (wrong key or tampered)");
    return plain;
  }
  return payload;
}

std::future<result<bytes>> disk_tier::get_async(block_hash hash) {
  auto p = std::make_shared<std::promise<result<bytes>>>();
  auto f = p->get_future();
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(hash);
    if (disabled_.load() || it == map_.end()) {
      ++stats_.misses;
      p->set_value(make_error(errc::not_found, "block not in G3"));
      return f;
    }
    lru_.splice(lru_.end(), lru_, it->second.pos);
  }
  pool_->submit([this, p, hash] {
    auto r = read_file(hash);
    std::lock_guard lk(mu_);
    if (r.ok()) {
      ++stats_.hits;
    } else {
      ++stats_.errors;
      if (r.err().code == errc::corrupt) {
        component_logger("kv.tiers")->warn("G3 dropping block {:016x}: {}", hash, r.err().message);
        ::unlink(path_of(hash).c_str());
      }
    }
    if (!r.ok()) {
      auto it = map_.find(hash);
      if (it != map_.end()) {
        lru_.erase(it->second.pos);
        stats_.bytes_held -= it->second.len;
        map_.erase(it);
      }
    }
    p->set_value(std::move(r));
  });
  return f;
}

result<bytes> disk_tier::get(block_hash hash) { return get_async(hash).get(); }

bool disk_tier::contains(block_hash hash) const {
  std::lock_guard lk(mu_);
  return map_.count(hash) != 0;
}

bool disk_tier::erase(block_hash hash) {
  {
    std::lock_guard lk(mu_);
    if (!map_.count(hash)) return false;
  }
  index_drop(hash);
  ::unlink(path_of(hash).c_str());
  return true;
}

std::vector<block_hash> disk_tier::hashes() const {
  std::lock_guard lk(mu_);
  std::vector<block_hash> out;
  out.reserve(map_.size());
  for (const auto& kv : map_) out.push_back(kv.first);
  return out;
}

std::size_t disk_tier::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

tier_stats disk_tier::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

status disk_tier::sync() {
  if (dir_fd_ < 0) return make_error(errc::io_error, "no directory fd");
  if (::syncfs(dir_fd_) != 0) return make_error(errc::io_error, std::string("syncfs: ") + std::strerror(errno));
  return {};
}

result<std::vector<block_hash>> disk_tier::recover() {
  namespace fs = std::filesystem;
  auto log = component_logger("kv.tiers");
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, block_hash>> found;
  fs::directory_iterator it(opts_.dir, ec), end;
  if (ec) return make_error(errc::io_error, "recover: " + opts_.dir.string() + ": " + ec.message());
  std::size_t dropped = 0;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (name.find(std::string(suffix) + ".tmp.") != std::string::npos) {
      fs::remove(it->path(), ec);
      ++dropped;
      continue;
    }
    if (name.size() != 16 + std::strlen(suffix) || name.substr(16) != suffix) continue;
    char* endp = nullptr;
    std::string hex = name.substr(0, 16);
    block_hash h = std::strtoull(hex.c_str(), &endp, 16);
    if (endp != hex.c_str() + 16) continue;
    auto r = read_file(h, /*decrypt=*/false);  // checksum + header; a key mismatch shows at get()
    if (!r.ok()) {
      log->warn("G3 recovery dropping {}: {}", name, r.err().message);
      fs::remove(it->path(), ec);
      ++dropped;
      continue;
    }
    found.emplace_back(fs::last_write_time(it->path(), ec), h);
    index_insert(h, r->size());
  }
  // Re-establish LRU order by mtime (oldest first).
  std::sort(found.begin(), found.end());
  {
    std::lock_guard lk(mu_);
    lru_.clear();
    for (auto& [t, h] : found)
      if (auto m = map_.find(h); m != map_.end()) m->second.pos = lru_.insert(lru_.end(), h);
  }
  std::vector<block_hash> out;
  {
    std::lock_guard lk(mu_);
    for (auto& [t, h] : found)
      if (map_.count(h)) out.push_back(h);
  }
  log->info("G3 recovered {} blocks from {} ({} dropped)", out.size(), opts_.dir.string(), dropped);
  return out;
}

}  // namespace yard::kv::tiers
