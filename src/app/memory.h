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
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <vector>

namespace ztunnel::app {

// Sets glibc malloc's thresholds for a proxy's buffer churn; call once at
// start, before any thread. By default glibc trims a worker arena's top as
// soon as 128 KiB-1 MiB is free there: each time a busy connection freed a
// receive chunk or a TLS buffer the pages went back to the kernel
// (madvise), only to be faulted in again, zeroed, on the next allocation,
// costing a tenth of a bulk transfer's CPU. Now the top keeps up to
// `kTrimThreshold` free, which release_free_memory_periodically hands back
// once the proxy is quieter; allocations below `kMmapThreshold` (every
// per-connection buffer) come from the arenas, not from mmap. A
// GLIBC_TUNABLES that sets malloc tunables is left to rule.
void tune_malloc();
inline constexpr std::size_t kTrimThreshold = 8u << 20;
inline constexpr std::size_t kMmapThreshold = 1u << 20;

// Bytes free in malloc's arenas (resident or not): mallinfo2().fordblks.
std::size_t heap_free_bytes();

// Gives every free heap page back to the kernel now (malloc_trim(0)). Call
// after a burst of transient allocations (a config parsed and applied).
void release_free_memory();

// Asio's epoll reactor keeps a 168-byte state per socket it ever had open
// at once and never frees it: a closed socket's state goes to a free list
// for the next socket. After 10,000 connections close, those 10,000 states
// (1.7 MiB) sit one every few pages among the freed per-connection memory
// and keep ~23 MiB of a worker's heap resident. This frees the states on
// `io`'s free list. Call from any thread: the work is posted to `io`, and
// the states are deleted one handler later, once every event the reactor
// returned before is handled (Asio queues its reactor task behind them),
// so no queued event can still point at one. Needs a single-threaded io.
void release_idle_socket_states(boost::asio::io_context& io);

// States on `io`'s reactor free list. Call on io's thread, or while it is not running.
std::size_t idle_socket_states(boost::asio::io_context& io);

// Every `period`: when at least `threshold` more bytes are free than after
// the previous release (connections closed, buffers dropped), releases
// them, and the idle socket states of `workers`; then again in each of the
// next 3 periods (connections still closing, states deleted since). A steady state (free memory reused as fast as freed)
// costs one mallinfo2() per period. Runs until its executor stops; never throws.
boost::asio::awaitable<void> release_free_memory_periodically(
    std::chrono::milliseconds period, std::size_t threshold,
    std::vector<boost::asio::io_context*> workers = {});

}  // namespace ztunnel::app
