// What this machine's BoringSSL costs per operation: AEAD sealing throughput
// (the bulk floor) and the public-key operations of one mTLS handshake (the
// handshake floor). The README's crypto figures come from here.
//
//   build-bench/tools/bench/crypto_speed
#include <openssl/aead.h>
#include <openssl/crypto.h>
#include <openssl/curve25519.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

template <class Op>
double microseconds_per(Op op, int iterations) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) op();
  const std::chrono::duration<double, std::micro> spent = std::chrono::steady_clock::now() - start;
  return spent.count() / iterations;
}

void seal_throughput(const char* name, const EVP_AEAD* aead) {
  std::vector<std::uint8_t> key(EVP_AEAD_key_length(aead), 7);
  std::vector<std::uint8_t> nonce(EVP_AEAD_nonce_length(aead), 1);
  std::vector<std::uint8_t> record(16384, 3);  // one full TLS record
  std::vector<std::uint8_t> sealed(record.size() + EVP_AEAD_max_overhead(aead));
  EVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(&ctx, aead, key.data(), key.size(), EVP_AEAD_DEFAULT_TAG_LENGTH,
                         nullptr)) {
    std::printf("%-22s unavailable\n", name);
    return;
  }
  const double us = microseconds_per([&] {
    std::size_t n = 0;
    EVP_AEAD_CTX_seal(&ctx, sealed.data(), &n, sealed.size(), nonce.data(), nonce.size(),
                      record.data(), record.size(), nullptr, 0);
  }, 20000);
  std::printf("%-22s %6.2f GB/s sealing 16 KiB records\n", name,
              static_cast<double>(record.size()) / us / 1e3);
  EVP_AEAD_CTX_cleanup(&ctx);
}

}  // namespace

int main() {
  std::printf("AES hardware used by BoringSSL: %s\n", EVP_has_aes_hardware() ? "yes" : "no");
  seal_throughput("AES-128-GCM", EVP_aead_aes_128_gcm());
  seal_throughput("AES-256-GCM", EVP_aead_aes_256_gcm());
  seal_throughput("ChaCha20-Poly1305", EVP_aead_chacha20_poly1305());

  bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  EC_KEY_generate_key(key.get());
  std::uint8_t digest[32] = {1};
  std::vector<std::uint8_t> signature(ECDSA_size(key.get()));
  unsigned signature_len = 0;
  std::printf("ECDSA P-256 sign       %6.1f us\n", microseconds_per([&] {
    ECDSA_sign(0, digest, sizeof digest, signature.data(), &signature_len, key.get());
  }, 2000));
  std::printf("ECDSA P-256 verify     %6.1f us\n", microseconds_per([&] {
    ECDSA_verify(0, digest, sizeof digest, signature.data(), signature_len, key.get());
  }, 1000));
  std::uint8_t public_a[32], private_a[32], public_b[32], private_b[32], shared[32];
  X25519_keypair(public_b, private_b);
  std::printf("X25519 key pair        %6.1f us\n",
              microseconds_per([&] { X25519_keypair(public_a, private_a); }, 2000));
  std::printf("X25519 shared secret   %6.1f us\n",
              microseconds_per([&] { X25519(shared, private_a, public_b); }, 2000));
  return 0;
}
