// sim/router_bridge.cpp — binds the simulator to kv::kv_router_core, the same
// object the live router actor drives (index + load tracker + policy from
// kv::make_policy). Workers are named "w<i>"; each worker's KV events travel as
// sequenced msg::kv_event_batch values exactly as on the wire, and are applied
// (pump) at once: in virtual time the router never lags behind its queue.
// Nothing here decides a route.
#include "sim/router_bridge.hpp"

#include <algorithm>
#include <limits>

#include "kv/kv_router_core.hpp"

namespace yard::sim {

namespace {

class core_bridge final : public router_bridge {
 public:
  core_bridge(std::unique_ptr<kv::kv_router_core> core, std::uint32_t workers)
      : core_(std::move(core)), names_(workers), index_(workers), seq_(workers, 0), serving_(workers, true) {
    for (std::uint32_t w = 0; w < workers; ++w) {
      names_[w] = "w" + std::to_string(w);
      index_[w] = core_->add_worker(names_[w]);
      by_index_[index_[w]] = w;
    }
  }

  result<std::uint32_t> route(const route_query& q) override {
    kv::route_input in;
    in.request_id = std::string(q.request_id);
    in.hashes.assign(q.hashes.begin(), q.hashes.end());
    in.prompt_tokens = q.prompt_tokens;
    in.max_tokens = q.max_tokens;
    in.now_ms = q.now_ms;
    in.session_id = q.session_id;
    auto out = core_->route(in);
    if (!out) return out.err();
    auto it = by_index_.find(out->worker);
    if (it == by_index_.end()) return make_error(errc::internal, "router chose unknown worker '" + out->worker_id + "'");
    return it->second;
  }

  void on_kv_events(std::uint32_t worker, std::vector<msg::kv_event> events, double) override {
    if (!serving_[worker]) return;
    msg::kv_event_batch b;
    b.worker_id = names_[worker];
    b.seq = seq_[worker]++;
    b.events = std::move(events);
    core_->on_kv_events(std::move(b));
    core_->pump(std::numeric_limits<std::uint64_t>::max());
  }

  void on_load(std::uint32_t worker, const msg::load_report& load, double now_ms) override {
    if (!serving_[worker]) return;
    msg::load_report r = load;
    r.worker_id = names_[worker];
    r.timestamp_ms = static_cast<std::uint64_t>(now_ms);
    core_->on_load_report(r);
  }
  void on_first_token(std::string_view id, std::uint32_t, double) override { core_->on_first_token(std::string(id)); }
  void on_finished(std::string_view id, std::uint32_t, double) override { core_->on_complete(std::string(id)); }

  void set_serving(std::uint32_t w, bool serving) override {
    if (serving_[w] == serving) return;
    serving_[w] = serving;
    if (!serving) {
      by_index_.erase(index_[w]);
      core_->remove_worker(names_[w]);
      return;
    }
    index_[w] = core_->add_worker(names_[w]);  // a fresh worker: empty cache, seq from 0
    by_index_[index_[w]] = w;
    seq_[w] = 0;
  }

 private:
  std::unique_ptr<kv::kv_router_core> core_;
  std::vector<std::string> names_;            // [sim worker] -> id
  std::vector<kv::worker_index> index_;       // [sim worker] -> core index
  std::unordered_map<kv::worker_index, std::uint32_t> by_index_;
  std::vector<std::uint64_t> seq_;            // next batch seq per worker
  std::vector<bool> serving_;                 // [sim worker] -> in routing
};

}  // namespace

std::vector<std::string> policy_names() { return kv::policy_names(); }

result<std::unique_ptr<router_bridge>> make_router_bridge(const std::string& policy, std::uint32_t workers,
                                                          std::uint32_t block_size, std::uint64_t seed,
                                                          const kv::policy_config& policy_cfg) {
  kv::kv_router_options o;
  o.policy = policy;
  o.policy_cfg = policy_cfg;
  o.seed = seed;
  o.block_size = block_size;
  o.use_kv_events = true;
  o.index.max_workers = std::max<std::uint32_t>(o.index.max_workers, workers);
  o.index.shards = 1;  // one simulation thread: no lock contention to spread
  o.index.initial_capacity = 1u << 12;
  auto core = kv::kv_router_core::create(o);
  if (!core) return core.err();
  return std::unique_ptr<router_bridge>(std::make_unique<core_bridge>(std::move(core.value()), workers));
}

}  // namespace yard::sim
