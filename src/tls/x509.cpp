// URI SAN extraction, strict identity, PEM in and out, ASN1_TIME conversion.
#include "tls/x509.h"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "tls/spiffe.h"

namespace ztunnel::tls {
namespace {

std::string drain_bio(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(bio, &data, &len)) return {};
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string last_error_string() {
  uint32_t err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

}  // namespace

Checked<std::vector<std::string>> uri_sans(const X509& cert) {
  int critical = -1;
  bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(&cert, NID_subject_alt_name, &critical, nullptr)));
  if (names == nullptr) {
    if (critical == -1) return std::vector<std::string>{};  // no SAN extension
    if (critical == -2) {
      return Rejection{Errc::kMalformedCertificate, "more than one subjectAltName extension"};
    }
    return Rejection{Errc::kMalformedCertificate, "subjectAltName extension does not parse"};
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  return out;
}

Checked<state::Identity> identity_from(const X509& cert) {
  auto sans = uri_sans(cert);
  if (!sans) return sans.error();
  if (sans->empty()) return Rejection{Errc::kNoUriSan, "certificate has no URI SAN"};
  if (sans->size() > 1) {
    return Rejection{Errc::kMultipleUriSans,
                     fmt::format("certificate has {} URI SANs, exactly one is allowed", sans->size())};
  }
  const std::string& san = sans->front();
  // A NUL lets "spiffe://td/ns/a/sa/b\0.evil" compare equal to the honest ID
  // in any strlen-based consumer (CVE-2009-2408 style), so reject outright.
  if (std::memchr(san.data(), '\0', san.size()) != nullptr) {
    return Rejection{Errc::kInvalidSpiffeId,
                     fmt::format("URI SAN has an embedded NUL (ASN.1 length {}, strlen {})",
                                 san.size(), std::strlen(san.c_str()))};
  }
  auto id = parse_spiffe_id(san);
  if (!id) return Rejection{Errc::kInvalidSpiffeId, id.error().message};
  return std::move(*id);
}

core::Result<std::vector<X509Ptr>> parse_pem_certificates(std::string_view pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return core::make_error("out of memory");
  std::vector<X509Ptr> out;
  ERR_clear_error();
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) {
      uint32_t err = ERR_peek_last_error();
      // Running out of blocks is the normal end of the input.
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return core::make_error(fmt::format("certificate {} does not decode: {}", out.size() + 1,
                                          last_error_string()));
    }
    out.push_back(std::move(cert));
  }
  if (out.empty()) return core::make_error("no PEM CERTIFICATE block found");
  return out;
}

core::Result<KeyPtr> parse_pem_private_key(std::string_view pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return core::make_error("out of memory");
  ERR_clear_error();
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return core::make_error(fmt::format("no usable PEM private key: {}", last_error_string()));
  }
  return key;
}

std::string to_pem(const X509& cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), mut(cert))) return {};
  return drain_bio(bio.get());
}

std::string to_pem(const EVP_PKEY& key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PKCS8PrivateKey(bio.get(), const_cast<EVP_PKEY*>(&key), nullptr,
                                             nullptr, 0, nullptr, nullptr)) {
    return {};
  }
  return drain_bio(bio.get());
}

core::Result<TimePoint> to_time_point(const ASN1_TIME& time) {
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int seconds = 0;
  if (!epoch || !ASN1_TIME_diff(&days, &seconds, epoch.get(), &time)) {
    ERR_clear_error();
    return core::make_error("unparseable ASN.1 time");
  }
  return TimePoint(std::chrono::seconds(int64_t{days} * 86400 + seconds));
}

TimePoint not_before(const X509& cert) {
  const ASN1_TIME* t = X509_get0_notBefore(&cert);
  auto r = t ? to_time_point(*t) : core::Result<TimePoint>(core::make_error("missing"));
  return r ? *r : TimePoint();
}

TimePoint not_after(const X509& cert) {
  const ASN1_TIME* t = X509_get0_notAfter(&cert);
  auto r = t ? to_time_point(*t) : core::Result<TimePoint>(core::make_error("missing"));
  return r ? *r : TimePoint();
}

std::string subject_of(const X509& cert) {
  const X509_NAME* name = X509_get_subject_name(&cert);
  if (name == nullptr || X509_NAME_entry_count(name) == 0) return "(empty)";
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "(unprintable)";
  return drain_bio(bio.get());
}

std::string serial_hex(const X509& cert) {
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(&cert), nullptr));
  if (!bn) return {};
  bssl::UniquePtr<char> hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : std::string();
}

}  // namespace ztunnel::tls
