// Where workload certificates come from, and how their rotation is announced.
//
// Threading: fetch() and subscribe() may be called from any thread; fetch()
// never blocks on I/O (it returns what the provider holds, issuing in process
// at most). Rotation callbacks run on the thread that performed the rotation
// (the provider's executor for timer-driven reloads, or the thread that called
// fetch() for a lazy renewal), never under a provider lock; a callback that
// touches thread-owned state must post to its own executor. A callback may
// still be running when its Subscription is destroyed on another thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "state/identity.h"
#include "tls/certificate.h"

namespace ztunnel::identity {

using CertPtr = std::shared_ptr<const tls::WorkloadCertificate>;
using RotationCallback = std::function<void(const state::Identity&, const CertPtr&)>;

// Fan-out of rotation events to subscribers.
class RotationNotifier {
 public:
  // Unsubscribes when destroyed; may outlive the notifier.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&&) noexcept = default;
    Subscription& operator=(Subscription&&) noexcept;
    ~Subscription();
    void reset();

   private:
    friend class RotationNotifier;
    struct Shared;
    Subscription(std::weak_ptr<Shared> shared, uint64_t id) : shared_(std::move(shared)), id_(id) {}
    std::weak_ptr<Shared> shared_;
    uint64_t id_ = 0;
  };

  RotationNotifier();
  [[nodiscard]] Subscription subscribe(RotationCallback callback);
  void notify(const state::Identity& id, const CertPtr& cert) const;

 private:
  std::shared_ptr<Subscription::Shared> shared_;
};

class CertificateProvider {
 public:
  virtual ~CertificateProvider() = default;

  // The current certificate for `id`, or why there is none (an identity this
  // provider does not serve, or no valid certificate yet).
  virtual core::Result<CertPtr> fetch(const state::Identity& id) = 0;

  // `callback` runs after each rotation: a new certificate replacing one that
  // fetch() has returned before. Contexts built from the old one should be
  // rebuilt (tls contexts are immutable and swapped whole).
  [[nodiscard]] RotationNotifier::Subscription on_rotation(RotationCallback callback) {
    return rotations_.subscribe(std::move(callback));
  }

 protected:
  void notify_rotation(const state::Identity& id, const CertPtr& cert) const {
    rotations_.notify(id, cert);
  }

 private:
  RotationNotifier rotations_;
};

}  // namespace ztunnel::identity
