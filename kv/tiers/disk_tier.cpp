// kv/tiers/disk_tier.cpp — see disk_tier.hpp.
#include "kv/tiers/disk_tier.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>
#include <unordered_set>

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

constexpr char block_magic[4] = {'Y', 'K', 'V', 'B'};
constexpr char slab_magic[4] = {'Y', 'K', 'V', 'S'};
constexpr std::uint16_t block_version = 2;  // 1 was the one-file-per-block layout
constexpr std::uint16_t slab_version = 1;
constexpr std::uint16_t flag_encrypted = 1;
constexpr std::size_t header_size = 128;  // a block's header at the start of its slot
constexpr std::size_t align = 4096;       // O_DIRECT: buffers, offsets and lengths
constexpr const char* old_suffix = ".ykvb";

std::uint64_t round_up(std::uint64_t n) { return (n + align - 1) / align * align; }

struct header {
  std::uint16_t flags = 0;
  std::uint64_t hash = 0;
  std::uint64_t length = 0;
  std::uint64_t checksum = 0;
  std::uint64_t seq = 0;
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
  std::memcpy(out, block_magic, 4);
  put_le(out + 4, block_version, 2);
  put_le(out + 6, h.flags, 2);
  put_le(out + 8, h.hash, 8);
  put_le(out + 16, h.length, 8);
  put_le(out + 24, h.checksum, 8);
  put_le(out + 32, h.seq, 8);
  std::memcpy(out + 40, h.nonce, 12);
  std::memcpy(out + 52, h.tag, 16);
}

// A slot's header, or nullopt when the slot holds no block of this layout (zeroes, another format).
std::optional<header> decode_header(const unsigned char* in) {
  if (std::memcmp(in, block_magic, 4) != 0 || get_le(in + 4, 2) != block_version) return std::nullopt;
  header h;
  h.flags = static_cast<std::uint16_t>(get_le(in + 6, 2));
  h.hash = get_le(in + 8, 8);
  h.length = get_le(in + 16, 8);
  h.checksum = get_le(in + 24, 8);
  h.seq = get_le(in + 32, 8);
  std::memcpy(h.nonce, in + 40, 12);
  std::memcpy(h.tag, in + 52, 16);
  return h;
}

// xxh3-64 of the stored payload, seeded with the xxh3-64 of the header (its checksum field zeroed).
std::uint64_t slot_checksum(const unsigned char* slot, std::uint64_t length) {
  unsigned char hd[header_size];
  std::memcpy(hd, slot, header_size);
  std::memset(hd + 24, 0, 8);
  return XXH3_64bits_withSeed(slot + header_size, length, XXH3_64bits(hd, header_size));
}

// The slab header: magic, version, slot size, and an xxh3 of those 16 bytes.
void encode_slab_header(std::uint64_t slot_bytes, unsigned char* out) {
  std::memset(out, 0, align);
  std::memcpy(out, slab_magic, 4);
  put_le(out + 4, slab_version, 2);
  put_le(out + 8, slot_bytes, 8);
  put_le(out + 16, XXH3_64bits(out, 16), 8);
}
std::uint64_t decode_slab_header(const unsigned char* in) {  // 0 = not a slab header
  if (std::memcmp(in, slab_magic, 4) != 0 || get_le(in + 4, 2) != slab_version) return 0;
  if (get_le(in + 16, 8) != XXH3_64bits(in, 16)) return 0;
  std::uint64_t slot = get_le(in + 8, 8);
  return slot >= align && slot % align == 0 ? slot : 0;
}

// An aligned buffer of at least n bytes, one per thread, kept: a fresh 2 MiB
// buffer per I/O costs more in page faults than the I/O on a virtual machine.
unsigned char* aligned_scratch(std::size_t n) {
  thread_local std::vector<unsigned char> scratch;
  if (scratch.size() < n + align) scratch.resize(n + align);
  auto* p = scratch.data();
  return p + (align - reinterpret_cast<std::uintptr_t>(p) % align) % align;
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
  if (fd_ >= 0) ::close(fd_);
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
  const auto path = t->slab_path();
  t->direct_ = true;
  t->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0600);
  if (t->fd_ < 0 && errno == EINVAL) {  // no O_DIRECT here (tmpfs): plain I/O
    t->direct_ = false;
    t->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }
  if (t->fd_ < 0) return make_error(errc::io_error, "disk_tier: cannot open " + path.string() + ": " + std::strerror(errno));
  // One tier per slab (released when the fd closes, after the last write has landed).
  const auto lock_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(0, opts.lock_wait_ms));
  while (::flock(t->fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= lock_until)
      return make_error(errc::conflict, "disk_tier: " + path.string() +
                                            " is in use by another KV tier (another worker given this directory, or "
                                            "one still closing): give each worker its own --kv-disk-dir");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // An existing slab keeps its slot size unless this tier's blocks need another one.
  auto log = component_logger("kv.tiers");
  struct stat st{};
  if (::fstat(t->fd_, &st) != 0) return make_error(errc::io_error, "disk_tier: fstat " + path.string());
  std::uint64_t found = 0;
  if (st.st_size >= static_cast<off_t>(slab_header_bytes)) {
    unsigned char* hb = aligned_scratch(align);
    if (read_all(t->fd_, hb, align, 0)) found = decode_slab_header(hb);
  }
  const std::uint64_t want = opts.block_bytes ? round_up(header_size + opts.block_bytes) : 0;
  if (found && (want == 0 || want == found)) {
    t->slot_bytes_ = found;
  } else {
    if (st.st_size > 0) {
      if (found)
        log->info("G3 slab {} has {}-byte slots, blocks of {} bytes need {}: starting an empty slab", path.string(),
                  found, opts.block_bytes, want);
      else
        log->warn("G3 {} is not a slab of this version: starting an empty one", path.string());
      if (::ftruncate(t->fd_, 0) != 0)
        return make_error(errc::io_error, "disk_tier: truncate " + path.string() + ": " + std::strerror(errno));
    }
    if (want)
      if (status s = t->fix_slot_size(opts.block_bytes); !s.ok()) return s.err();
  }
  t->pool_ = std::make_unique<io_pool>(opts.io_threads);
  return t;
}

std::size_t disk_tier::slot_bytes() const {
  std::lock_guard lk(mu_);
  return slot_bytes_;
}

status disk_tier::fix_slot_size(std::size_t payload) {
  std::lock_guard lk(mu_);
  if (slot_bytes_ != 0) return {};
  const std::uint64_t slot = round_up(header_size + payload);
  unsigned char* hb = aligned_scratch(align);
  encode_slab_header(slot, hb);
  if (!write_all(fd_, hb, align, 0))
    return make_error(errno == ENOSPC ? errc::resource_exhausted : errc::io_error,
                      "write slab header " + slab_path().string() + ": " + std::strerror(errno ? errno : EIO));
  slot_bytes_ = slot;
  return {};
}

bool disk_tier::fits(std::size_t payload) const {
  std::lock_guard lk(mu_);
  return slot_bytes_ == 0 || header_size + payload <= slot_bytes_;
}

std::optional<std::uint64_t> disk_tier::slot_offset_for_testing(block_hash hash) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end()) return std::nullopt;
  return offset_of(it->second.slot);
}

void disk_tier::set_evict_callback(evict_fn fn) {
  std::lock_guard lk(mu_);
  on_evict_ = std::move(fn);
}

void disk_tier::disable(const std::string& why) {
  if (disabled_.exchange(true)) return;
  component_logger("kv.tiers")->error("G3 disabled: {} (slab {}); continuing without a disk tier", why,
                                      slab_path().string());
  std::vector<block_hash> dropped;
  evict_fn cb;
  {
    std::lock_guard lk(mu_);
    for (auto& [h, e] : map_) dropped.push_back(h);
    while (!map_.empty()) forget_locked(map_.begin()->first);
    cb = on_evict_;
  }
  if (cb)
    for (auto h : dropped) cb(h);
}

std::uint64_t disk_tier::take_slot() {
  std::uint64_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = next_slot_++;
  }
  if (slot_gen_.size() <= slot) slot_gen_.resize(slot + 1, 0);
  return slot;
}

std::optional<std::uint64_t> disk_tier::unindex_locked(block_hash h) {
  auto it = map_.find(h);
  if (it == map_.end()) return std::nullopt;
  const std::uint64_t slot = it->second.slot;
  lru_.erase(it->second.pos);
  stats_.bytes_held -= it->second.len;
  ++slot_gen_[slot];
  map_.erase(it);
  return slot;
}

void disk_tier::forget_locked(block_hash h) {
  if (auto slot = unindex_locked(h)) free_slots_.push_back(*slot);
}

void disk_tier::commit(block_hash h, std::uint64_t len, std::uint64_t slot) {
  std::vector<block_hash> victims;
  evict_fn cb;
  {
    std::lock_guard lk(mu_);
    if (disabled_.load()) {  // disabled while this block was being written
      free_slots_.push_back(slot);
      return;
    }
    forget_locked(h);  // an older copy of the same block: its slot is free again
    map_.emplace(h, entry{len, slot, lru_.insert(lru_.end(), h)});
    stats_.bytes_held += len;
    while (map_.size() > opts_.capacity_blocks) {
      block_hash v = lru_.front();
      forget_locked(v);
      ++stats_.evictions;
      victims.push_back(v);
    }
    cb = on_evict_;
  }
  if (cb)
    for (auto v : victims) cb(v);
}

status disk_tier::write_slot(block_hash h, const bytes& data, std::uint64_t slot, std::uint64_t seq) {
  if (fail_writes_.load()) return make_error(errc::resource_exhausted, "write failed: No space left on device (injected)");
  const std::size_t n = slot_bytes_;  // the whole slot: the slab's size stays header + k slots
  unsigned char* buf = aligned_scratch(n);
  header hd;
  hd.hash = h;
  hd.length = data.size();
  hd.seq = seq;
  auto* payload = reinterpret_cast<std::byte*>(buf + header_size);
  if (key_) {
    hd.flags |= flag_encrypted;
    if (RAND_bytes(hd.nonce, sizeof hd.nonce) != 1) return make_error(errc::internal, "RAND_bytes failed");
    if (!gcm(true, key_->data(), hd.nonce, h, data.data(), data.size(), payload, hd.tag))
      return make_error(errc::internal, "AES-256-GCM encryption failed");
  } else {
    std::memcpy(payload, data.data(), data.size());
  }
  std::memset(buf + header_size + data.size(), 0, n - header_size - data.size());
  encode_header(hd, buf);
  put_le(buf + 24, slot_checksum(buf, data.size()), 8);
  bool ok = write_all(fd_, buf, n, static_cast<off_t>(offset_of(slot)));
  int err = ok ? 0 : (errno ? errno : EIO);
  if (ok && opts_.sync_each_write && ::fdatasync(fd_) != 0) { ok = false; err = errno; }
  if (!ok)
    return make_error(err == ENOSPC ? errc::resource_exhausted : errc::io_error,
                      "write " + slab_path().string() + " slot " + std::to_string(slot) + ": " + std::strerror(err));
  return {};
}

std::future<status> disk_tier::put_async(block_hash hash, bytes data) {
  auto p = std::make_shared<std::promise<status>>();
  auto f = p->get_future();
  if (disabled_.load()) {
    p->set_value(status{});
    return f;
  }
  if (status s = fix_slot_size(data.size()); !s.ok()) {
    disable(s.err().message);
    p->set_value(status{});
    return f;
  }
  if (!fits(data.size())) {
    p->set_value(make_error(errc::bad_request, "block of " + std::to_string(data.size()) +
                                                   " bytes does not fit a G3 slot of " + std::to_string(slot_bytes()) +
                                                   " bytes (header " + std::to_string(header_size) + ")"));
    return f;
  }
  pending_writes_.fetch_add(1);
  pool_->submit([this, p, hash, data = std::move(data)]() mutable {
    {
      std::unique_lock lk(hold_mu_);
      hold_cv_.wait(lk, [&] { return !hold_writes_; });
    }
    if (!disabled_.load()) {
      std::uint64_t slot, seq;
      {
        std::lock_guard lk(mu_);
        slot = take_slot();
        seq = next_seq_++;
      }
      if (status s = write_slot(hash, data, slot, seq); !s.ok()) {
        {
          std::lock_guard lk(mu_);
          ++stats_.errors;
          free_slots_.push_back(slot);
        }
        disable(s.err().message);
      } else {
        { std::lock_guard lk(mu_); ++stats_.puts; }
        commit(hash, data.size(), slot);
      }
    }
    pending_writes_.fetch_sub(1);
    p->set_value(status{});  // a failed write degrades the tier; it is not the caller's error
  });
  return f;
}

std::optional<std::future<status>> disk_tier::try_put_async(block_hash hash, bytes data) {
  const bool full = pending_writes_.load() >= std::max<std::size_t>(1, opts_.max_pending_writes);
  if (full || !fits(data.size())) {
    std::uint64_t n;
    {
      std::lock_guard lk(mu_);
      n = ++stats_.dropped;
    }
    if ((n & (n - 1)) == 0) {  // the 1st, 2nd, 4th, 8th ... drop: visible, never a flood
      if (full)
        component_logger("kv.tiers")
            ->warn("G3 '{}': write queue full ({} blocks): offloaded block dropped ({} so far)", opts_.dir.string(),
                   opts_.max_pending_writes, n);
      else
        component_logger("kv.tiers")
            ->warn("G3 '{}': a block of {} bytes does not fit its {}-byte slots: dropped ({} so far)",
                   opts_.dir.string(), data.size(), slot_bytes(), n);
    }
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

result<bytes> disk_tier::read_slot(block_hash h, std::uint64_t slot, std::uint64_t len) {
  const std::size_t n = round_up(header_size + len);
  unsigned char* buf = aligned_scratch(n);
  auto where = [&] { return slab_path().string() + " slot " + std::to_string(slot); };  // errors only
  if (!read_all(fd_, buf, n, static_cast<off_t>(offset_of(slot)))) {
    const int err = errno ? errno : EIO;
    return make_error(errc::io_error, where() + ": read failed: " + std::strerror(err));
  }
  auto hd = decode_header(buf);
  if (!hd) return make_error(errc::corrupt, where() + ": bad magic or version");
  if (hd->hash != h) return make_error(errc::corrupt, where() + ": header hash mismatch");
  if (hd->length != len)
    return make_error(errc::corrupt, where() + ": length " + std::to_string(hd->length) + ", expected " + std::to_string(len));
  if (slot_checksum(buf, len) != hd->checksum) return make_error(errc::corrupt, where() + ": checksum mismatch");
  const auto* payload = reinterpret_cast<const std::byte*>(buf + header_size);
  bool enc = hd->flags & flag_encrypted;
  if (enc != key_.has_value())
    return make_error(errc::corrupt, where() + (enc ? ": encrypted but no key" : ": not encrypted but a key is set"));
  if (enc) {
    bytes plain(len);
    if (!gcm(false, key_->data(), hd->nonce, h, payload, len, plain.data(), hd->tag))
      return make_error(errc::corrupt, where() + ": authentication failed (wrong key or tampered)");
    return plain;
  }
  return bytes(payload, payload + len);
}

std::future<result<bytes>> disk_tier::get_async(block_hash hash) {
  auto p = std::make_shared<std::promise<result<bytes>>>();
  auto f = p->get_future();
  std::uint64_t slot, len;
  std::uint32_t gen;
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(hash);
    if (disabled_.load() || it == map_.end()) {
      ++stats_.misses;
      p->set_value(make_error(errc::not_found, "block not in G3"));
      return f;
    }
    lru_.splice(lru_.end(), lru_, it->second.pos);
    slot = it->second.slot;
    len = it->second.len;
    gen = slot_gen_[slot];
  }
  pool_->submit([this, p, hash, slot, len, gen] {
    auto r = read_slot(hash, slot, len);
    std::lock_guard lk(mu_);
    if (slot_gen_[slot] != gen) {  // evicted or erased while being read: its slot may hold another block now
      ++stats_.misses;
      p->set_value(make_error(errc::not_found, "block left G3 while being read"));
      return;
    }
    if (r.ok()) {
      ++stats_.hits;
    } else {
      ++stats_.errors;
      component_logger("kv.tiers")->warn("G3 dropping block {:016x}: {}", hash, r.err().message);
      forget_locked(hash);
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
  std::uint64_t slot;
  {
    std::lock_guard lk(mu_);
    auto s = unindex_locked(hash);  // the slot is not free until its header is zeroed (below)
    if (!s) return false;
    slot = *s;
  }
  // Zero the slot's header first, so a restart does not bring the block back; then free the slot.
  pool_->submit([this, slot] {
    unsigned char* buf = aligned_scratch(align);
    std::memset(buf, 0, align);
    if (!write_all(fd_, buf, align, static_cast<off_t>(offset_of(slot))))
      component_logger("kv.tiers")->warn("G3 erase: cannot zero slot {} of {}: {}", slot, slab_path().string(),
                                         std::strerror(errno ? errno : EIO));
    std::lock_guard lk(mu_);
    free_slots_.push_back(slot);
  });
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
  if (::fdatasync(fd_) != 0) return make_error(errc::io_error, std::string("fdatasync: ") + std::strerror(errno));
  return {};
}

result<std::vector<block_hash>> disk_tier::recover() {
  namespace fs = std::filesystem;
  auto log = component_logger("kv.tiers");
  std::size_t dropped = 0;
  // The previous layout (one <hash>.ykvb file per block): its blocks are not carried over.
  std::error_code ec;
  fs::directory_iterator it(opts_.dir, ec), end;
  if (ec) return make_error(errc::io_error, "recover: " + opts_.dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    bool old = name.size() == 16 + std::strlen(old_suffix) && name.substr(16) == old_suffix;
    if (old || name.find(std::string(old_suffix) + ".tmp.") != std::string::npos) {
      fs::remove(it->path(), ec);
      ++dropped;
    }
  }
  const std::uint64_t slot = slot_bytes();
  struct stat st{};
  if (slot == 0 || ::fstat(fd_, &st) != 0 || st.st_size <= static_cast<off_t>(slab_header_bytes)) {
    log->info("G3 recovered 0 blocks from {} ({} dropped)", slab_path().string(), dropped);
    return std::vector<block_hash>{};
  }
  const std::uint64_t slots = (static_cast<std::uint64_t>(st.st_size) - slab_header_bytes) / slot;
  struct found_block {
    std::uint64_t seq, slot, len;
    block_hash hash;
  };
  std::vector<found_block> found;
  std::vector<std::uint64_t> empty;
  for (std::uint64_t s = 0; s < slots; ++s) {
    unsigned char* buf = aligned_scratch(slot);
    if (!read_all(fd_, buf, slot, static_cast<off_t>(offset_of(s))))
      return make_error(errc::io_error, "recover: read " + slab_path().string() + " slot " + std::to_string(s));
    auto hd = decode_header(buf);
    if (!hd) {  // never written, erased, or not ours
      empty.push_back(s);
      continue;
    }
    if (hd->length > slot - header_size || slot_checksum(buf, hd->length) != hd->checksum) {
      log->warn("G3 recovery dropping slot {} (block {:016x}): torn or corrupt", s, hd->hash);
      empty.push_back(s);
      ++dropped;
      continue;
    }
    found.push_back({hd->seq, s, hd->length, hd->hash});
  }
  // Newest first: a block written twice keeps its newest copy; the newest capacity_blocks stay.
  std::sort(found.begin(), found.end(), [](const found_block& a, const found_block& b) { return a.seq > b.seq; });
  std::vector<found_block> kept;
  std::unordered_set<block_hash> seen;
  for (auto& f : found) {
    if (kept.size() < opts_.capacity_blocks && seen.insert(f.hash).second)
      kept.push_back(f);
    else
      empty.push_back(f.slot);
  }
  std::vector<block_hash> out;
  {
    std::lock_guard lk(mu_);
    map_.clear();
    lru_.clear();
    stats_.bytes_held = 0;
    next_slot_ = slots;
    slot_gen_.assign(slots, 0);
    free_slots_ = std::move(empty);
    std::sort(free_slots_.rbegin(), free_slots_.rend());  // low slots handed out first
    for (auto k = kept.rbegin(); k != kept.rend(); ++k) {  // oldest first = LRU head
      map_.emplace(k->hash, entry{k->len, k->slot, lru_.insert(lru_.end(), k->hash)});
      stats_.bytes_held += k->len;
      out.push_back(k->hash);
    }
    if (!found.empty()) next_seq_ = std::max(next_seq_, found.front().seq + 1);
  }
  log->info("G3 recovered {} blocks from {} ({} dropped)", out.size(), slab_path().string(), dropped);
  return out;
}

}  // namespace yard::kv::tiers
