// transport/ucx/ucx_data_plane.cpp — see ucx_data_plane.hpp.
//
// Owns: every ucp_* call of the data plane. Must not touch: NATS, actors.
// Thread-safety: all state behind mu_; the progress thread takes mu_ per round.
#include "transport/ucx/ucx_data_plane.hpp"

#include <poll.h>

#include <chrono>
#include <cstring>

#include <ucp/api/ucp.h>
#include <xxhash.h>

#include "common/log.hpp"

namespace yard::transport {

namespace {

auto& logger() {
  static auto lg = component_logger("ucx");
  return lg;
}

ucp_context_h ctx_of(void* p) { return static_cast<ucp_context_h>(p); }
ucp_worker_h worker_of(void* p) { return static_cast<ucp_worker_h>(p); }

std::string ucs_text(ucs_status_t s) { return ucs_status_string(s); }

using clock_type = std::chrono::steady_clock;

}  // namespace

struct ucx_data_plane::region {
  ucp_mem_h memh = nullptr;
  char* base = nullptr;
  std::size_t length = 0;
  std::string packed_rkey;
};

struct ucx_data_plane::peer {
  ucp_ep_h ep = nullptr;
  std::atomic<bool> failed{false};
  ucs_status_t failure = UCS_OK;
};

namespace {
void on_ep_error(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* flag = static_cast<std::atomic<bool>*>(arg);
  flag->store(true);
  logger()->warn("ucx endpoint failed: {}", ucs_status_string(status));
}

// Force-closes `ep` and progresses until the close completes (bounded).
void force_close(ucp_worker_h w, ucp_ep_h ep) {
  ucp_request_param_t prm{};
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  prm.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t req = ucp_ep_close_nbx(ep, &prm);
  if (req == nullptr || UCS_PTR_IS_ERR(req)) return;
  auto deadline = clock_type::now() + std::chrono::seconds(2);
  while (ucp_request_check_status(req) == UCS_INPROGRESS && clock_type::now() < deadline) ucp_worker_progress(w);
  ucp_request_free(req);
}
}  // namespace

std::uint64_t ucx_data_plane::checksum(const void* data, std::size_t len) { return XXH3_64bits(data, len); }

result<std::unique_ptr<ucx_data_plane>> ucx_data_plane::create(const ucx_options& opts) {
  std::unique_ptr<ucx_data_plane> self(new ucx_data_plane());
  ucp_config_t* cfg = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &cfg);
  if (st != UCS_OK) return make_error(errc::unavailable, "ucp_config_read: " + ucs_text(st));
  if (!opts.transports.empty()) {
    st = ucp_config_modify(cfg, "TLS", opts.transports.c_str());
    if (st != UCS_OK) {
      ucp_config_release(cfg);
      return make_error(errc::bad_request, "bad UCX transport list '" + opts.transports + "': " + ucs_text(st));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP;
  ucp_context_h ctx = nullptr;
  st = ucp_init(&params, cfg, &ctx);
  ucp_config_release(cfg);
  if (st != UCS_OK) return make_error(errc::unavailable, "ucp_init: " + ucs_text(st));
  self->context_ = ctx;

  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;  // mu_ serialises every call
  ucp_worker_h w = nullptr;
  st = ucp_worker_create(ctx, &wp, &w);
  if (st != UCS_OK) return make_error(errc::unavailable, "ucp_worker_create: " + ucs_text(st));
  self->worker_ = w;

  ucp_address_t* addr = nullptr;
  std::size_t addr_len = 0;
  st = ucp_worker_get_address(w, &addr, &addr_len);
  if (st != UCS_OK) return make_error(errc::unavailable, "ucp_worker_get_address: " + ucs_text(st));
  self->address_.assign(reinterpret_cast<const char*>(addr), addr_len);
  ucp_worker_release_address(w, addr);

  ucp_context_attr_t attr{};
  attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
  bool cuda = false;
  if (ucp_context_query(ctx, &attr) == UCS_OK) cuda = (attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA)) != 0;
  self->transports_ = opts.transports.empty() ? "auto" : opts.transports;
  if (cuda) {
    self->memory_path_ = "host+cuda";
    logger()->info("ucx data plane (tls={}): host memory; this UCX build has CUDA memory support", self->transports_);
  } else {
    self->memory_path_ = "host";
    static std::once_flag once;
    std::call_once(once, [&] {
      logger()->info("ucx data plane (tls={}): host memory; cuda_ipc unavailable in this UCX build: device memory "
                     "would be staged through pinned host memory", self->transports_);
    });
  }

  self->idle_spin_us_ = opts.idle_spin_us;
  if (opts.progress_thread) {
    st = ucp_worker_get_efd(w, &self->efd_);
    if (st != UCS_OK) self->efd_ = -1;  // fall back to timed polling
    self->progress_ = std::thread([p = self.get()] { p->progress_loop(); });
  }
  return self;
}

ucx_data_plane::~ucx_data_plane() {
  stop_.store(true);
  if (progress_.joinable()) progress_.join();
  std::lock_guard lk(mu_);
  if (worker_ != nullptr) {
    for (auto& [addr, p] : peers_) force_close(worker_of(worker_), p->ep);
    peers_.clear();
  }
  for (auto& [id, r] : regions_) ucp_mem_unmap(ctx_of(context_), r->memh);
  regions_.clear();
  if (worker_ != nullptr) ucp_worker_destroy(worker_of(worker_));
  if (context_ != nullptr) ucp_cleanup(ctx_of(context_));
}

void ucx_data_plane::progress_loop() {
  // Optionally spin (yielding the core) for idle_spin_us_ after the last event, then
  // sleep on the worker's event fd: an idle plane costs no CPU. Some shared-memory
  // transports do not signal the fd, hence the short poll timeout.
  auto last_event = clock_type::now();
  while (!stop_.load()) {
    unsigned events = 0;
    ucs_status_t armed = UCS_ERR_BUSY;
    bool recent = false;
    {
      std::lock_guard lk(mu_);
      while (unsigned n = ucp_worker_progress(worker_of(worker_))) events += n;
      auto now = clock_type::now();
      if (events != 0) last_event = now;
      recent = idle_spin_us_ > 0 && now - last_event < std::chrono::microseconds(idle_spin_us_);
      if (!recent && efd_ >= 0) armed = ucp_worker_arm(worker_of(worker_));
    }
    if (recent || (armed == UCS_ERR_BUSY && efd_ >= 0)) {
      std::this_thread::yield();
      continue;
    }
    if (efd_ >= 0) {
      pollfd pfd{efd_, POLLIN, 0};
      ::poll(&pfd, 1, 1);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

void ucx_data_plane::progress() {
  std::lock_guard lk(mu_);
  while (ucp_worker_progress(worker_of(worker_)) != 0) {
  }
}

result<region_handle> ucx_data_plane::register_region(void* base, std::size_t len) {
  if (base == nullptr || len == 0) return make_error(errc::bad_request, "register_region: empty region");
  auto r = map_region(base, len);
  if (!r.ok()) return r.err();
  return r->first;
}

result<std::pair<region_handle, void*>> ucx_data_plane::allocate_region(std::size_t len) {
  if (len == 0) return make_error(errc::bad_request, "allocate_region: empty region");
  return map_region(nullptr, len);
}

result<std::pair<region_handle, void*>> ucx_data_plane::map_region(void* base, std::size_t len) {
  std::lock_guard lk(mu_);
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  mp.address = base;
  mp.length = len;
  if (base == nullptr) {
    mp.field_mask |= UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    mp.flags = UCP_MEM_MAP_ALLOCATE;
  }
  auto r = std::make_unique<region>();
  ucs_status_t st = ucp_mem_map(ctx_of(context_), &mp, &r->memh);
  if (st != UCS_OK) return make_error(errc::resource_exhausted, "ucp_mem_map: " + ucs_text(st));
  if (base == nullptr) {
    ucp_mem_attr_t ma{};
    ma.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
    st = ucp_mem_query(r->memh, &ma);
    if (st != UCS_OK || ma.length < len) {
      ucp_mem_unmap(ctx_of(context_), r->memh);
      return make_error(errc::internal, "ucp_mem_query failed");
    }
    base = ma.address;
  }
  void* rkey_buf = nullptr;
  std::size_t rkey_len = 0;
  st = ucp_rkey_pack(ctx_of(context_), r->memh, &rkey_buf, &rkey_len);
  if (st != UCS_OK) {
    ucp_mem_unmap(ctx_of(context_), r->memh);
    return make_error(errc::internal, "ucp_rkey_pack: " + ucs_text(st));
  }
  r->packed_rkey.assign(static_cast<const char*>(rkey_buf), rkey_len);
  ucp_rkey_buffer_release(rkey_buf);
  r->base = static_cast<char*>(base);
  r->length = len;
  region_handle h{next_region_++};
  regions_.emplace(h.id, std::move(r));
  return std::pair<region_handle, void*>{h, base};
}

status ucx_data_plane::deregister_region(region_handle h) {
  std::lock_guard lk(mu_);
  auto it = regions_.find(h.id);
  if (it == regions_.end()) return make_error(errc::not_found, "unknown region " + std::to_string(h.id));
  ucp_mem_unmap(ctx_of(context_), it->second->memh);
  regions_.erase(it);
  return {};
}

result<msg::kv_region_descriptor> ucx_data_plane::local_descriptor(region_handle h) {
  std::lock_guard lk(mu_);
  auto it = regions_.find(h.id);
  if (it == regions_.end()) return make_error(errc::not_found, "unknown region " + std::to_string(h.id));
  msg::kv_region_descriptor d;
  d.worker_address = address_;
  d.rkey = it->second->packed_rkey;
  d.base_address = reinterpret_cast<std::uintptr_t>(it->second->base);
  d.length = it->second->length;
  d.memory_type = "host";
  d.device_id = -1;
  return d;
}

result<ucx_data_plane::peer*> ucx_data_plane::peer_for(const std::string& worker_address) {
  auto it = peers_.find(worker_address);
  if (it != peers_.end()) {
    if (!it->second->failed.load()) return it->second.get();
    drop_peer_locked(worker_address);  // reconnect after a failure
  }
  auto p = std::make_unique<peer>();
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER;
  ep.address = reinterpret_cast<const ucp_address_t*>(worker_address.data());
  ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep.err_handler.cb = on_ep_error;
  ep.err_handler.arg = &p->failed;
  ucs_status_t st = ucp_ep_create(worker_of(worker_), &ep, &p->ep);
  if (st == UCS_ERR_UNREACHABLE) {
    // Shared-memory transports (posix, sysv, cma, self) have no peer-failure
    // support in UCX 1.13: connect without it; a dead peer then shows as a timeout.
    ep.field_mask &= ~(UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER);
    st = ucp_ep_create(worker_of(worker_), &ep, &p->ep);
    if (st == UCS_OK) logger()->info("ucx endpoint without peer-failure detection (transport lacks it)");
  }
  if (st != UCS_OK) return make_error(errc::unavailable, "ucp_ep_create: " + ucs_text(st));
  peer* raw = p.get();
  peers_.emplace(worker_address, std::move(p));
  return raw;
}

void ucx_data_plane::drop_peer_locked(const std::string& worker_address) {
  auto it = peers_.find(worker_address);
  if (it == peers_.end()) return;
  force_close(worker_of(worker_), it->second->ep);
  peers_.erase(it);
}

void ucx_data_plane::forget_peer(const std::string& worker_address) {
  std::lock_guard lk(mu_);
  drop_peer_locked(worker_address);
}

std::size_t ucx_data_plane::cached_peers() {
  std::lock_guard lk(mu_);
  return peers_.size();
}

result<transfer_stats> ucx_data_plane::pull(const msg::kv_region_descriptor& remote,
                                            std::span<const block_copy> blocks, region_handle local,
                                            int timeout_ms, std::span<const std::uint64_t> expected) {
  // Validation first: nothing malformed reaches UCX.
  if (remote.worker_address.size() < 8) return make_error(errc::bad_request, "descriptor: worker address too short");
  if (remote.rkey.empty()) return make_error(errc::bad_request, "descriptor: empty rkey");
  if (remote.memory_type != "host") {
    return make_error(errc::unsupported, "descriptor: memory type '" + remote.memory_type +
                                             "' needs CUDA transports this UCX build lacks");
  }
  if (!expected.empty() && expected.size() != blocks.size()) {
    return make_error(errc::bad_request, "pull: expected_checksums must have one entry per block");
  }
  std::lock_guard lk(mu_);
  auto lit = regions_.find(local.id);
  if (lit == regions_.end()) return make_error(errc::not_found, "pull: unknown local region");
  region& dst = *lit->second;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& b = blocks[i];
    if (b.length == 0 || b.remote_offset > remote.length || b.length > remote.length - b.remote_offset ||
        b.local_offset > dst.length || b.length > dst.length - b.local_offset) {
      return make_error(errc::bad_request, "pull: block " + std::to_string(i) + " out of bounds");
    }
    total += b.length;
  }
  auto t0 = clock_type::now();
  auto pr = peer_for(remote.worker_address);
  if (!pr) return pr.err();
  peer* p = *pr;
  ucp_worker_h w = worker_of(worker_);

  ucp_rkey_h rkey = nullptr;
  ucs_status_t st = ucp_ep_rkey_unpack(p->ep, remote.rkey.data(), &rkey);
  if (st != UCS_OK) return make_error(errc::bad_request, "descriptor: bad rkey: " + ucs_text(st));

  std::vector<void*> pending;
  pending.reserve(blocks.size());
  ucs_status_t failure = UCS_OK;
  std::size_t failed_block = blocks.size();  // blocks.size() = all issued
  for (std::size_t i = 0; i < blocks.size() && failure == UCS_OK; ++i) {
    const auto& b = blocks[i];
    ucp_request_param_t prm{};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_MEMH;
    prm.memh = dst.memh;
    ucs_status_ptr_t req = ucp_get_nbx(p->ep, dst.base + b.local_offset, b.length,
                                       remote.base_address + b.remote_offset, rkey, &prm);
    if (UCS_PTR_IS_ERR(req)) {
      failure = UCS_PTR_STATUS(req);
      failed_block = i;
    } else if (req != nullptr) {
      pending.push_back(req);
    }
  }

  auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  while (!pending.empty()) {
    ucp_worker_progress(w);
    for (std::size_t i = 0; i < pending.size();) {
      ucs_status_t rs = ucp_request_check_status(pending[i]);
      if (rs == UCS_INPROGRESS) {
        ++i;
        continue;
      }
      if (rs != UCS_OK && failure == UCS_OK) failure = rs;
      ucp_request_free(pending[i]);
      pending[i] = pending.back();
      pending.pop_back();
    }
    if (pending.empty()) break;
    if (p->failed.load() || failure != UCS_OK || clock_type::now() >= deadline) {
      timed_out = failure == UCS_OK && !p->failed.load();
      break;
    }
  }
  ucp_rkey_destroy(rkey);
  if (!pending.empty() || failure != UCS_OK || p->failed.load()) {
    // Requests still in flight: force-close the endpoint so they complete with an
    // error before the caller reuses its buffer, and forget the peer.
    std::string addr = remote.worker_address;
    drop_peer_locked(addr);
    auto d2 = clock_type::now() + std::chrono::seconds(2);
    while (!pending.empty() && clock_type::now() < d2) {
      ucp_worker_progress(w);
      for (std::size_t i = 0; i < pending.size();) {
        if (ucp_request_check_status(pending[i]) == UCS_INPROGRESS) {
          ++i;
          continue;
        }
        ucp_request_free(pending[i]);
        pending[i] = pending.back();
        pending.pop_back();
      }
    }
    for (void* r : pending) ucp_request_free(r);  // released by UCX when they finish
    if (timed_out) {
      logger()->warn("ucx pull timed out after {} ms ({} blocks)", timeout_ms, blocks.size());
      return make_error(errc::timeout, "pull timed out after " + std::to_string(timeout_ms) + " ms");
    }
    std::string why = failure != UCS_OK ? ucs_text(failure) : std::string("peer failed");
    if (failed_block < blocks.size()) why += " (issuing block " + std::to_string(failed_block) + ")";
    logger()->warn("ucx pull failed: {}", why);
    return make_error(errc::unavailable, "pull failed: " + why);
  }
  double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    std::uint64_t got = checksum(dst.base + blocks[i].local_offset, blocks[i].length);
    if (got != expected[i]) {
      logger()->warn("ucx pull: checksum mismatch on block {}", i);
      return make_error(errc::corrupt, "checksum mismatch on block " + std::to_string(i));
    }
  }
  return transfer_stats{total, secs};
}

}  // namespace yard::transport
