// gRPC message framing and status trailers.
#include "h2/grpc.h"

#include <charconv>

namespace ztunnel::h2::grpc {

void append_message(std::span<const std::uint8_t> message, std::vector<std::uint8_t>& out) {
  const auto n = static_cast<std::uint32_t>(message.size());
  out.reserve(out.size() + kPrefixBytes + message.size());
  out.push_back(0);  // not compressed
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), message.begin(), message.end());
}

void MessageReader::feed(std::span<const std::uint8_t> bytes) {
  if (head_ > 0 && head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

boost::system::result<std::optional<std::vector<std::uint8_t>>> MessageReader::next() {
  const std::size_t avail = buf_.size() - head_;
  if (avail < kPrefixBytes) return std::optional<std::vector<std::uint8_t>>();
  const std::uint8_t* p = buf_.data() + head_;
  if (p[0] != 0) return make_error_code(Errc::kGrpcCompressed);
  const std::size_t len = (std::size_t{p[1]} << 24) | (std::size_t{p[2]} << 16) |
                          (std::size_t{p[3]} << 8) | std::size_t{p[4]};
  if (len > max_) return make_error_code(Errc::kGrpcMessageTooLarge);
  if (avail < kPrefixBytes + len) return std::optional<std::vector<std::uint8_t>>();
  std::vector<std::uint8_t> message(p + kPrefixBytes, p + kPrefixBytes + len);
  head_ += kPrefixBytes + len;
  // Drop consumed bytes once they dominate, so a long stream stays small.
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  } else if (head_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return std::optional<std::vector<std::uint8_t>>(std::move(message));
}

boost::system::error_code MessageReader::finish() const {
  if (buf_.size() != head_) return make_error_code(Errc::kGrpcTruncated);
  return {};
}

std::string percent_decode(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex(text[i + 1]);
      const int lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

boost::system::result<Status> parse_status(const Headers& fields) {
  const std::string* code = find_header(fields, "grpc-status");
  if (!code || code->empty()) return make_error_code(Errc::kGrpcMissingStatus);
  int value = 0;
  auto [end, ec] = std::from_chars(code->data(), code->data() + code->size(), value);
  if (ec != std::errc() || end != code->data() + code->size() || value < 0) {
    return make_error_code(Errc::kGrpcMissingStatus);
  }
  Status status;
  status.code = value;
  if (const std::string* msg = find_header(fields, "grpc-message")) {
    status.message = percent_decode(*msg);
  }
  return status;
}

}  // namespace ztunnel::h2::grpc
