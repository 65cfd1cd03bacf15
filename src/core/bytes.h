// Copies of payload bytes on the data path.
//
// Why not one memcpy: from about 2 KiB up, glibc's memcpy switches to
// `rep movsb`, and on AMD Zen (the benchmark VMs, and many cloud hosts) that
// instruction runs several times slower when source and destination sit at
// different offsets within a cache line. On this path they nearly always do:
// a DATA payload starts 9 bytes after its frame header. Handing memcpy pieces
// just under glibc's lowest rep-movsb threshold keeps it on its vector loop,
// which does not mind the offsets. In the bulk benchmark the receive queue's
// copy fell from 9.4% to 1.5% of the two proxies' CPU samples, and CPU per GB
// by about 11% (tools/bench/README.md, "memcpy in pieces").
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ztunnel::core {

// Below glibc's smallest default `rep movsb` threshold (2048 bytes for SSE2,
// 2112 with FSRM, more with wider vectors), and a whole number of cache lines.
inline constexpr std::size_t kCopyPiece = 2048 - 64;

inline void copy_bytes(std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
  while (n > 0) {
    std::size_t piece = std::min(n, kCopyPiece);
    // Hide the bound from the compiler: knowing the size is at most
    // kCopyPiece, GCC inlines the copy as `rep movsq`, which has the same
    // trouble. Unknown, it calls memcpy.
    asm("" : "+r"(piece));
    std::memcpy(dst, src, piece);
    dst += piece;
    src += piece;
    n -= piece;
  }
}

// out += [src, src + n), without value-initialising the new bytes first.
inline void append_bytes(std::vector<std::uint8_t>& out, const std::uint8_t* src, std::size_t n) {
  if (out.capacity() - out.size() < n) out.reserve(std::max(out.size() + n, out.capacity() * 2));
  while (n > 0) {
    std::size_t piece = std::min(n, kCopyPiece);
    asm("" : "+r"(piece));  // as in copy_bytes
    out.insert(out.end(), src, src + piece);
    src += piece;
    n -= piece;
  }
}

}  // namespace ztunnel::core
