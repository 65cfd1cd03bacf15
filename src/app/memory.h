// Giving the heap's free memory back to the kernel.
//
// glibc's malloc returns memory to the kernel only from the top of a heap
// (and M_TRIM_THRESHOLD above it). A proxy that held 10,000 connections, or
// that parsed a large config, is left with tens of MiB of free chunks below
// live ones: resident until reused, though no longer in use. malloc_trim(0)
// gives back every free page of every arena (MADV_DONTNEED); this file decides
// when to call it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>

namespace ztunnel::app {

// Bytes free in malloc's arenas (resident or not): mallinfo2().fordblks.
std::size_t heap_free_bytes();

// Gives every free heap page back to the kernel now (malloc_trim(0)). Call
// after a burst of transient allocations (a config parsed and applied).
void release_free_memory();

// Every `period`: when at least `threshold` more bytes are free than after
// the previous release (connections closed, buffers dropped), releases
// them. A steady state (free memory reused as fast as freed) costs one
// mallinfo2() per period. Runs until its executor stops; never throws.
boost::asio::awaitable<void> release_free_memory_periodically(std::chrono::milliseconds period,
                                                              std::size_t threshold);

}  // namespace ztunnel::app
