// actors/kv_transfer_agent.cpp — see kv_transfer_agent.hpp.
#include "actors/kv_transfer_agent.hpp"

#include <cstdlib>
#include <random>

#include "backends/native/cuda/cuda_device.hpp"
#include "common/log.hpp"

namespace yard::actors {

namespace {
std::shared_ptr<spdlog::logger> logger() {
  static auto l = component_logger("kv-transfer");
  return l;
}
}  // namespace

result<std::unique_ptr<kv_transfer_agent>> kv_transfer_agent::create(const kv_transfer_options& opts,
                                                                      std::size_t block_bytes,
                                                                      std::shared_ptr<const prefill_faults> faults) {
  if (block_bytes == 0) return make_error(errc::bad_request, "the engine has no KV block bytes to transfer");
  std::size_t n = opts.staging_mb * (std::size_t{1} << 20) / block_bytes;
  if (n == 0)
    return make_error(errc::bad_request, "KV staging of " + std::to_string(opts.staging_mb) +
                                             " MiB holds no block of " + std::to_string(block_bytes) + " bytes");
  transport::ucx_options uo;
  uo.transports = opts.ucx_transports;
  uo.progress_thread = true;  // peers read our staging slots while the actor computes
  auto plane = transport::ucx_data_plane::create(uo);
  if (!plane) return plane.err();
  std::unique_ptr<kv_transfer_agent> a(new kv_transfer_agent());
  a->opts_ = opts;
  a->faults_ = std::move(faults);
  a->block_bytes_ = block_bytes;
  a->plane_ = std::move(*plane);
  // calloc: pages are backed only when a slot is first used.
  a->base_ = std::calloc(n, block_bytes);
  if (a->base_ == nullptr) return make_error(errc::unavailable, "cannot allocate KV staging memory");
  // An engine on a GPU copies blocks between device and these slots: page-locked, those copies are DMA without a
  // bounce buffer (every page is committed then). Otherwise the region stays pageable and lazy, GPU host or not.
  if (opts.page_lock) {
    a->pinned_ = backends::native::pin_host_memory(a->base_, n * block_bytes);
    logger()->info("KV staging {} for CUDA copies", a->pinned_ ? "page-locked" : "left pageable (cudaHostRegister failed)");
  }
  auto reg = a->plane_->register_region(a->base_, n * block_bytes);
  if (!reg) {
    if (a->pinned_) backends::native::unpin_host_memory(a->base_);  // never free memory the driver still has locked
    a->pinned_ = false;
    std::free(a->base_);
    a->base_ = nullptr;
    return reg.err();
  }
  a->region_ = *reg;
  auto d = a->plane_->local_descriptor(a->region_);
  if (!d) return d.err();
  a->descriptor_ = *d;
  a->slots_.resize(n);
  a->free_.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    a->slots_[i] = i;
    a->free_.push_back(static_cast<std::uint32_t>(n - 1 - i));
  }
  a->next_lease_ = (static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}()) | 1;
  logger()->info("KV transfer: {} staging slots of {} bytes over UCX ({}), lease {} ms, checksums {}", n, block_bytes,
                 a->plane_->transports(), opts.lease_ms, opts.checksums ? "on" : "off");
  return a;
}

kv_transfer_agent::~kv_transfer_agent() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();  // a pull in flight ends within pull_timeout_ms
  if (plane_ && region_.id) (void)plane_->deregister_region(region_);
  plane_.reset();
  if (pinned_) backends::native::unpin_host_memory(base_);
  std::free(base_);
}

result<staged_blocks> kv_transfer_agent::stage(const backends::engine& eng, const std::vector<kv::block_hash>& hashes) {
  staged_blocks out;
  out.region = descriptor_;
  std::size_t n = eng.cached_blocks(hashes);
  if (n == 0) return out;
  if (n > free_.size())
    return make_error(errc::unavailable, "KV staging full: " + std::to_string(n) + " blocks wanted, " +
                                             std::to_string(free_.size()) + " free");
  lease l;
  for (std::size_t i = 0; i < n; ++i) {
    auto s = free_.back();
    std::span<std::byte> dst(slot_ptr(s), block_bytes_);
    if (eng.export_kv(std::span<const kv::block_hash>(&hashes[i], 1), dst) != 1) break;
    free_.pop_back();
    l.slots.push_back(s);
    msg::kv_block_ref ref;
    ref.block_hash = hashes[i];
    ref.offset = std::uint64_t{s} * block_bytes_;
    ref.length = block_bytes_;
    if (opts_.checksums) ref.checksum = transport::ucx_data_plane::checksum(dst.data(), dst.size());
    if (faults_ && l.slots.size() == 1 && faults_->tamper_staged(dst))
      logger()->warn("fault injection: corrupted staged block {:016x}", hashes[i]);
    out.blocks.push_back(ref);
  }
  if (l.slots.empty()) return out;
  out.lease_id = next_lease_++;
  leases_.emplace(out.lease_id, std::move(l));
  counters_.staged_leases++;
  return out;
}

bool kv_transfer_agent::release(std::uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return false;
  free_.insert(free_.end(), it->second.slots.begin(), it->second.slots.end());
  leases_.erase(it);
  counters_.released_leases++;
  return true;
}

std::size_t kv_transfer_agent::leased_blocks() const {
  std::size_t n = 0;
  for (const auto& [id, l] : leases_) n += l.slots.size();
  return n;
}

result<std::optional<kv_transfer_agent::pull_job>> kv_transfer_agent::prepare_pull(
    const backends::engine& eng, const msg::remote_prefill_reply& reply, const std::vector<kv::block_hash>& hashes) {
  if (!reply.region || reply.blocks.empty()) return std::optional<pull_job>{};
  const auto& blocks = reply.blocks;
  if (blocks.size() > hashes.size()) return make_error(errc::bad_request, "the reply names more blocks than the prompt has");
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].block_hash != hashes[i])
      return make_error(errc::corrupt, "block " + std::to_string(i) + " of the reply is not the prompt's block");
    if (blocks[i].length != block_bytes_)
      return make_error(errc::bad_request, "block length " + std::to_string(blocks[i].length) + " != " +
                                               std::to_string(block_bytes_) + " (different model or layout)");
  }
  // Blocks this engine already holds need no transfer: pull only the rest.
  std::size_t have = eng.cached_blocks(std::span<const kv::block_hash>(hashes.data(), blocks.size()));
  std::size_t want = blocks.size() - have;
  if (want == 0) return std::optional<pull_job>{};
  if (want > free_.size()) return make_error(errc::unavailable, "no local KV staging room for the pull");
  pull_job job;
  job.id = next_pull_++;
  job.remote = *reply.region;
  job.hashes.assign(hashes.begin() + static_cast<std::ptrdiff_t>(have), hashes.begin() + static_cast<std::ptrdiff_t>(blocks.size()));
  if (have > 0) job.parent = hashes[have - 1];
  job.slots.assign(free_.end() - static_cast<std::ptrdiff_t>(want), free_.end());
  free_.resize(free_.size() - want);
  pulling_ += want;
  bool all_sums = opts_.checksums;
  for (std::size_t i = 0; i < want; ++i) {
    const auto& b = blocks[have + i];
    job.copies.push_back({b.offset, std::uint64_t{job.slots[i]} * block_bytes_, b.length});
    if (b.checksum) job.checksums.push_back(*b.checksum);
    else all_sums = false;
  }
  if (!all_sums) job.checksums.clear();  // verify all or none
  counters_.pulls++;
  return std::optional<pull_job>(std::move(job));
}

void kv_transfer_agent::start_pull(const pull_job& job, std::function<void(status)> done) {
  {
    std::lock_guard lk(mu_);
    queue_.emplace_back(job, std::move(done));
    if (!thread_.joinable()) thread_ = std::thread([this] { transfer_loop(); });
  }
  cv_.notify_one();
}

void kv_transfer_agent::transfer_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    auto [job, done] = std::move(queue_.front());
    queue_.pop_front();
    bool stopping = stop_;
    lk.unlock();
    status st = status::success();
    if (stopping) {
      st = make_error(errc::unavailable, "worker stopping");
    } else {
      auto r = plane_->pull(job.remote, job.copies, region_, opts_.pull_timeout_ms, job.checksums);
      if (!r) {
        st = r.err();
        if (r.err().code == errc::unavailable) plane_->forget_peer(job.remote.worker_address);
      }
    }
    done(st);
    lk.lock();
  }
}

result<std::size_t> kv_transfer_agent::finish_pull(backends::engine& eng, const pull_job& job, const status& pulled) {
  auto give_back = [&] {
    free_.insert(free_.end(), job.slots.begin(), job.slots.end());
    pulling_ -= job.slots.size();
  };
  if (!pulled) {
    give_back();
    counters_.failed_pulls++;
    return pulled.err();
  }
  std::size_t done = 0;
  for (std::size_t i = 0; i < job.hashes.size(); ++i) {
    std::optional<kv::block_hash> parent = i == 0 ? job.parent : std::optional<kv::block_hash>(job.hashes[i - 1]);
    auto n = eng.import_kv(std::span<const kv::block_hash>(&job.hashes[i], 1), parent,
                           std::span<const std::byte>(slot_ptr(job.slots[i]), block_bytes_));
    if (!n) {
      give_back();
      counters_.failed_pulls++;
      return n.err();
    }
    if (*n == 0) break;  // the pool is full: the rest is recomputed
    ++done;
  }
  give_back();
  counters_.pulled_blocks += job.hashes.size();
  counters_.pulled_bytes += job.hashes.size() * block_bytes_;
  return done;
}

}  // namespace yard::actors
