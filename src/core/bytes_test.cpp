// Unit tests for the data-path byte copies.
#include "core/bytes.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "support/testing.h"

namespace ztunnel::core {
namespace {

std::vector<std::uint8_t> numbered(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  return v;
}

// Sizes around the piece boundary and offsets that misalign source and
// destination differently, as a DATA payload after its 9-byte header is.
TEST_CASE("copy_bytes copies every byte at any size and offset, and nothing more") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kCopyPiece - 1, kCopyPiece, kCopyPiece + 1,
                        3 * kCopyPiece + 17, std::size_t{16384}, std::size_t{65536}}) {
    for (std::size_t src_offset : {0, 9}) {
      const std::vector<std::uint8_t> source = numbered(n + src_offset);
      std::vector<std::uint8_t> dest(n + 3 + 2, 0xAB);
      copy_bytes(dest.data() + 3, source.data() + src_offset, n);
      CAPTURE(n);
      CAPTURE(src_offset);
      CHECK(std::equal(source.begin() + static_cast<std::ptrdiff_t>(src_offset), source.end(),
                       dest.begin() + 3));
      CHECK(dest[0] == 0xAB);
      CHECK(dest[2] == 0xAB);
      CHECK(dest[n + 3] == 0xAB);
      CHECK(dest[n + 4] == 0xAB);
    }
  }
}

TEST_CASE("append_bytes appends after what the vector holds") {
  std::vector<std::uint8_t> out = {1, 2, 3};
  const std::vector<std::uint8_t> more = numbered(5 * kCopyPiece + 5);
  append_bytes(out, more.data(), more.size());
  REQUIRE(out.size() == 3 + more.size());
  CHECK(out[0] == 1);
  CHECK(out[2] == 3);
  CHECK(std::equal(more.begin(), more.end(), out.begin() + 3));
  append_bytes(out, more.data(), 0);
  CHECK(out.size() == 3 + more.size());
}

}  // namespace
}  // namespace ztunnel::core
