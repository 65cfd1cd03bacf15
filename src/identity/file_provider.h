// Workload certificate from PEM files on disk, reloaded when the files change.
//
// Layout (Istio's names, also what `ztunnel-certs issue` writes):
//   <dir>/cert-chain.pem   leaf first, then intermediates
//   <dir>/key.pem          the leaf's private key (PKCS#8, SEC1 or PKCS#1)
//   <dir>/root-cert.pem    trust anchors; several concatenated roots are all trusted
// or three explicit paths. The provider serves the one identity found in the
// leaf's URI SAN.
//
// Reload: poll() compares each file's (device, inode, size, mtime, ctime) with
// the last seen values; Kubernetes secret mounts swap a symlink, which changes
// the inode. A changed set that fails to load (half-written file, key from
// another pair) keeps the previous certificate, logs once, and is retried
// when the files change again.
//
// Threading: fetch(), current() and poll() may be called from any thread;
// start() polls on the given executor. Rotation callbacks run on the thread
// that called poll().
#pragma once

#include <sys/stat.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>

#include "identity/provider.h"

namespace ztunnel::identity {

struct CertificateFiles {
  std::filesystem::path cert_chain;
  std::filesystem::path key;
  std::filesystem::path roots;

  static CertificateFiles in_directory(const std::filesystem::path& dir);
};

// Reads the three files and builds the certificate; the error names the file.
core::Result<CertPtr> load_certificate_files(const CertificateFiles& files);

class FileCertificateProvider final : public CertificateProvider,
                                      public std::enable_shared_from_this<FileCertificateProvider> {
 public:
  // Loads the files once; a missing or invalid set is a start-up error.
  static core::Result<std::shared_ptr<FileCertificateProvider>> create(CertificateFiles files);

  // The certificate if `id` is the identity in the files, else an error.
  core::Result<CertPtr> fetch(const state::Identity& id) override;
  CertPtr current() const;

  // Reloads if the files changed; true if the certificate was replaced.
  bool poll();

  // Calls poll() every `interval` on `executor` until stop() or destruction.
  void start(boost::asio::any_io_executor executor,
             std::chrono::steady_clock::duration interval = std::chrono::seconds(1));
  void stop() { ++generation_; }

 private:
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    friend bool operator==(const FileStamp&, const FileStamp&) = default;
  };
  using Stamps = std::array<FileStamp, 3>;

  explicit FileCertificateProvider(CertificateFiles files) : files_(std::move(files)) {}
  Stamps stamps() const;

  const CertificateFiles files_;
  std::atomic<uint64_t> generation_{0};  // bumped by start() and stop(); ends older loops
  mutable std::mutex mutex_;
  CertPtr current_;      // guarded by mutex_
  Stamps seen_{};        // guarded by mutex_: stamps of the last load attempt
};

}  // namespace ztunnel::identity
