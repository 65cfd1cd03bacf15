// Rotation fan-out: callbacks copied under a lock and invoked outside it.
#include "identity/provider.h"

#include <vector>

namespace ztunnel::identity {

struct RotationNotifier::Subscription::Shared {
  std::mutex mutex;
  uint64_t next_id = 1;
  std::map<uint64_t, std::shared_ptr<const RotationCallback>> callbacks;
};

RotationNotifier::Subscription& RotationNotifier::Subscription::operator=(
    Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    shared_ = std::move(other.shared_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

RotationNotifier::Subscription::~Subscription() { reset(); }

void RotationNotifier::Subscription::reset() {
  if (auto shared = shared_.lock()) {
    std::lock_guard lock(shared->mutex);
    shared->callbacks.erase(id_);
  }
  shared_.reset();
  id_ = 0;
}

RotationNotifier::RotationNotifier() : shared_(std::make_shared<Subscription::Shared>()) {}

RotationNotifier::Subscription RotationNotifier::subscribe(RotationCallback callback) {
  std::lock_guard lock(shared_->mutex);
  uint64_t id = shared_->next_id++;
  shared_->callbacks.emplace(id, std::make_shared<const RotationCallback>(std::move(callback)));
  return Subscription(shared_, id);
}

void RotationNotifier::notify(const state::Identity& id, const CertPtr& cert) const {
  std::vector<std::shared_ptr<const RotationCallback>> callbacks;
  {
    std::lock_guard lock(shared_->mutex);
    for (const auto& [_, cb] : shared_->callbacks) callbacks.push_back(cb);
  }
  for (const auto& cb : callbacks) (*cb)(id, cert);
}

}  // namespace ztunnel::identity
