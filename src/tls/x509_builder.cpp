// X.509 v3 construction with BoringSSL's legacy ASN.1 structures.
#include "tls/x509_builder.h"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace ztunnel::tls {
namespace {

core::Error ssl_error(std::string_view what) {
  uint32_t err = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "unknown error";
  if (err != 0) ERR_error_string_n(err, buf, sizeof(buf));
  return core::make_error(fmt::format("{}: {}", what, buf));
}

bool set_time(ASN1_TIME* field, TimePoint t) {
  return ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)) != nullptr;
}

// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
bssl::UniquePtr<ASN1_OCTET_STRING> key_id(const X509& cert) {
  const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(&cert);
  if (bits == nullptr) return nullptr;
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), digest);
  bssl::UniquePtr<ASN1_OCTET_STRING> out(ASN1_OCTET_STRING_new());
  if (!out || !ASN1_OCTET_STRING_set(out.get(), digest, sizeof(digest))) return nullptr;
  return out;
}

bool set_random_serial(X509* cert) {
  uint8_t bytes[16];
  RAND_bytes(bytes, sizeof(bytes));
  bytes[0] &= 0x7f;  // DER INTEGER: keep it positive
  bytes[0] |= 0x40;  // and never zero or short
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn) return false;
  bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  return serial && X509_set_serialNumber(cert, serial.get());
}

bool add_general_name(GENERAL_NAMES* names, int type, const std::string& value) {
  bssl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  bssl::UniquePtr<ASN1_IA5STRING> str(ASN1_IA5STRING_new());
  if (!name || !str ||
      !ASN1_STRING_set(str.get(), value.data(), static_cast<int>(value.size()))) {
    return false;
  }
  GENERAL_NAME_set0_value(name.get(), type, str.release());
  if (!sk_GENERAL_NAME_push(names, name.get())) return false;
  name.release();
  return true;
}

bool add_extensions(X509* cert, const CertificateFields& f, const X509& issuer_cert) {
  if (!f.uri_sans.empty() || !f.dns_sans.empty()) {
    bssl::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
    if (!names) return false;
    for (const auto& uri : f.uri_sans) {
      if (!add_general_name(names.get(), GEN_URI, uri)) return false;
    }
    for (const auto& dns : f.dns_sans) {
      if (!add_general_name(names.get(), GEN_DNS, dns)) return false;
    }
    if (!X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), f.san_critical ? 1 : 0,
                           X509V3_ADD_DEFAULT)) {
      return false;
    }
  }
  if (f.basic_constraints) {
    bssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
    if (!bc) return false;
    bc->ca = f.is_ca ? 0xff : 0;
    if (f.is_ca && f.path_len) {
      bc->pathlen = ASN1_INTEGER_new();
      if (!bc->pathlen || !ASN1_INTEGER_set(bc->pathlen, *f.path_len)) return false;
    }
    if (!X509_add1_ext_i2d(cert, NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT)) {
      return false;
    }
  }
  if (f.key_usage != 0) {
    bssl::UniquePtr<ASN1_BIT_STRING> ku(ASN1_BIT_STRING_new());
    if (!ku) return false;
    for (int bit = 0; bit < 9; ++bit) {
      if ((f.key_usage & (1u << bit)) && !ASN1_BIT_STRING_set_bit(ku.get(), bit, 1)) return false;
    }
    if (!X509_add1_ext_i2d(cert, NID_key_usage, ku.get(), 1, X509V3_ADD_DEFAULT)) return false;
  }
  if (f.server_auth || f.client_auth) {
    bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
    if (!eku) return false;
    // OBJ_nid2obj returns static objects; the stack's free is a no-op on them.
    if (f.server_auth && !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth))) return false;
    if (f.client_auth && !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth))) return false;
    if (!X509_add1_ext_i2d(cert, NID_ext_key_usage, eku.get(), 0, X509V3_ADD_DEFAULT)) return false;
  }
  auto ski = key_id(*cert);
  if (!ski || !X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski.get(), 0,
                                 X509V3_ADD_DEFAULT)) {
    return false;
  }
  bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  if (!akid) return false;
  akid->keyid = key_id(issuer_cert).release();
  if (!akid->keyid ||
      !X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT)) {
    return false;
  }
  return true;
}

}  // namespace

core::Result<KeyPtr> generate_key(KeyType type) {
  KeyPtr pkey(EVP_PKEY_new());
  if (!pkey) return ssl_error("EVP_PKEY_new");
  if (type == KeyType::kEcdsaP256) {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (!ec || !EC_KEY_generate_key(ec.get()) || !EVP_PKEY_assign_EC_KEY(pkey.get(), ec.get())) {
      return ssl_error("generating a P-256 key");
    }
    ec.release();
  } else {
    bssl::UniquePtr<RSA> rsa(RSA_new());
    bssl::UniquePtr<BIGNUM> e(BN_new());
    if (!rsa || !e || !BN_set_word(e.get(), RSA_F4) ||
        !RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr) ||
        !EVP_PKEY_assign_RSA(pkey.get(), rsa.get())) {
      return ssl_error("generating an RSA key");
    }
    rsa.release();
  }
  return pkey;
}

core::Result<X509Ptr> build_certificate(const CertificateFields& fields, EVP_PKEY& subject_key,
                                        const X509* issuer, EVP_PKEY& signing_key) {
  X509Ptr cert(X509_new());
  bssl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (!cert || !subject) return ssl_error("X509_new");
  for (auto [nid, value] : {std::pair{NID_organizationName, &fields.organization},
                            std::pair{NID_commonName, &fields.common_name}}) {
    if (!value->empty() &&
        !X509_NAME_add_entry_by_NID(subject.get(), nid, MBSTRING_UTF8,
                                    reinterpret_cast<const uint8_t*>(value->data()),
                                    static_cast<int>(value->size()), -1, 0)) {
      return ssl_error("subject name");
    }
  }
  if (!X509_set_version(cert.get(), X509_VERSION_3) || !set_random_serial(cert.get()) ||
      !X509_set_subject_name(cert.get(), subject.get()) ||
      !X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject.get()) ||
      !set_time(X509_getm_notBefore(cert.get()), fields.not_before) ||
      !set_time(X509_getm_notAfter(cert.get()), fields.not_after) ||
      !X509_set_pubkey(cert.get(), &subject_key)) {
    return ssl_error("certificate fields");
  }
  const X509* signer = issuer != nullptr ? issuer : cert.get();
  if (!add_extensions(cert.get(), fields, *signer)) {
    return ssl_error("certificate extensions");
  }
  if (!X509_sign(cert.get(), &signing_key, EVP_sha256())) return ssl_error("signing");
  return cert;
}

}  // namespace ztunnel::tls
