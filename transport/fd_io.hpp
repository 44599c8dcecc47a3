// transport/fd_io.hpp — whole-buffer reads and writes on a pipe or socket.
//
// Owns: write_all / read_all with a deadline, used where processes hand each
// other UCX descriptors over a pipe (the multi-host tests and the transfer
// benchmark's forked peers). Must not touch: NATS or UCX themselves.
#pragma once

#include <cstddef>

namespace yard::transport {

// Writes all n bytes; false on an error or a closed peer.
bool write_all(int fd, const void* p, std::size_t n);

// Reads exactly n bytes; false on EOF, an error, or when timeout_ms pass first.
bool read_all(int fd, void* p, std::size_t n, int timeout_ms);

}  // namespace yard::transport
