// messages/kv_transfer.hpp — wire types that describe KV memory for the UCX data plane.
//
// Owns: kv_region_descriptor (where a peer's registered KV memory lives and how to
// reach it) and kv_block_ref (one block inside such a region). These travel as
// msgpack over NATS; UCX moves only the bytes they point at.
// Must not touch: behaviour, I/O, UCX itself (transport/ucx/ owns that).
// Thread-safety: plain values.
//
// Byte strings (worker address, packed rkey) are std::string holding raw bytes:
// they round-trip through msgpack; JSON is for debugging only (non-UTF-8 bytes
// are replaced there, so never decode a descriptor from JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace yard::msg {

struct kv_region_descriptor {
  std::string worker_address;     // required: packed ucp worker address bytes
  std::string rkey;               // required: packed remote key bytes (ucp_rkey_pack)
  std::uint64_t base_address = 0; // required: remote virtual address of the region start
  std::uint64_t length = 0;       // required: region length in bytes
  std::string memory_type = "host";  // "host" or "cuda" (default "host")
  std::int32_t device_id = -1;    // CUDA device ordinal, -1 for host (default -1)
};
template <class V> void describe(V& v, kv_region_descriptor& x) {
  v.req("worker_address", x.worker_address);
  v.req("rkey", x.rkey);
  v.req("base_address", x.base_address);
  v.req("length", x.length);
  v.opt("memory_type", x.memory_type);
  v.opt("device_id", x.device_id);
}

// One KV block inside a kv_region_descriptor's region.
struct kv_block_ref {
  std::uint64_t block_hash = 0;          // required: kv/block_hash.hpp hash of the block
  std::uint64_t offset = 0;              // required: byte offset from the region base
  std::uint64_t length = 0;              // required: block length in bytes
  std::optional<std::uint64_t> checksum; // xxh3-64 of the block bytes (absent = unchecked)
};
template <class V> void describe(V& v, kv_block_ref& x) {
  v.req("block_hash", x.block_hash);
  v.req("offset", x.offset);
  v.req("length", x.length);
  v.opt("checksum", x.checksum);
}

}  // namespace yard::msg
