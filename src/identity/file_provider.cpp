// File-backed certificate provider: load, stat-based change detection, keep-last-good.
#include "identity/file_provider.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fstream>
#include <sstream>

#include "identity/periodic.h"
#include "core/log.h"

namespace ztunnel::identity {
namespace {

namespace asio = boost::asio;
constexpr std::string_view kLogTarget = "identity";

core::Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(fmt::format("cannot open {}", path.string()));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return core::make_error(fmt::format("cannot read {}", path.string()));
  // Explicit: core::Error is also constructible from a string.
  return core::Result<std::string>(boost::system::in_place_value, out.str());
}

}  // namespace

CertificateFiles CertificateFiles::in_directory(const std::filesystem::path& dir) {
  return {dir / "cert-chain.pem", dir / "key.pem", dir / "root-cert.pem"};
}

core::Result<CertPtr> load_certificate_files(const CertificateFiles& files) {
  auto chain = read_file(files.cert_chain);
  if (!chain) return chain.error();
  auto key = read_file(files.key);
  if (!key) return key.error();
  auto roots = read_file(files.roots);
  if (!roots) return roots.error();
  auto cert = tls::WorkloadCertificate::from_pem(*chain, *key, *roots);
  if (!cert) {
    return core::make_error(fmt::format("{} / {} / {}: {}", files.cert_chain.string(),
                                        files.key.string(), files.roots.string(),
                                        cert.error().message));
  }
  return *cert;
}

core::Result<std::shared_ptr<FileCertificateProvider>> FileCertificateProvider::create(
    CertificateFiles files) {
  std::shared_ptr<FileCertificateProvider> provider(new FileCertificateProvider(std::move(files)));
  Stamps before = provider->stamps();
  auto cert = load_certificate_files(provider->files_);
  if (!cert) return cert.error();
  provider->current_ = std::move(*cert);
  provider->seen_ = before;
  log::info(kLogTarget, "loaded certificate for {} from {} (expires in {} h)",
            provider->current_->identity().to_spiffe(),
            provider->files_.cert_chain.parent_path().string(),
            std::chrono::duration_cast<std::chrono::hours>(provider->current_->not_after() -
                                                           std::chrono::system_clock::now())
                .count());
  return provider;
}

core::Result<CertPtr> FileCertificateProvider::fetch(const state::Identity& id) {
  CertPtr cert = current();
  if (cert->identity() != id) {
    return core::make_error(fmt::format("certificate files hold {}, not {}",
                                        cert->identity().to_spiffe(), id.to_spiffe()));
  }
  return cert;
}

CertPtr FileCertificateProvider::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

FileCertificateProvider::Stamps FileCertificateProvider::stamps() const {
  Stamps out{};
  const std::filesystem::path* paths[] = {&files_.cert_chain, &files_.key, &files_.roots};
  for (size_t i = 0; i < out.size(); ++i) {
    struct stat st {};
    if (::stat(paths[i]->c_str(), &st) != 0) continue;  // missing: all-zero stamp
    out[i].dev = st.st_dev;
    out[i].ino = st.st_ino;
    out[i].size = st.st_size;
    out[i].mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    out[i].ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  }
  return out;
}

bool FileCertificateProvider::poll() {
  Stamps now = stamps();
  {
    std::lock_guard lock(mutex_);
    if (now == seen_) return false;
    seen_ = now;
  }
  auto cert = load_certificate_files(files_);
  if (!cert) {
    log::warn(kLogTarget, "certificate files changed but do not load; keeping the previous "
                          "certificate: {}", cert.error().message);
    return false;
  }
  CertPtr fresh = std::move(*cert);
  {
    std::lock_guard lock(mutex_);
    current_ = fresh;
  }
  log::info(kLogTarget, "reloaded certificate for {} (expires in {} h)",
            fresh->identity().to_spiffe(),
            std::chrono::duration_cast<std::chrono::hours>(fresh->not_after() -
                                                           std::chrono::system_clock::now())
                .count());
  notify_rotation(fresh->identity(), fresh);
  return true;
}

void FileCertificateProvider::start(asio::any_io_executor executor,
                                    std::chrono::steady_clock::duration interval) {
  const uint64_t generation = ++generation_;
  run_every(std::move(executor), interval, [weak = weak_from_this(), generation] {
    auto self = weak.lock();
    if (!self || self->generation_ != generation) return false;
    self->poll();
    return true;
  });
}

}  // namespace ztunnel::identity
