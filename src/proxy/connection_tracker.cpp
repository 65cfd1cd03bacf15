// ConnectionTracker: registrations, and the re-check that revokes what a new snapshot denies.
#include "proxy/connection_tracker.h"

#include <utility>
#include <vector>

#include "core/log.h"
#include "proxy/authorization.h"

namespace ztunnel::proxy {

struct ConnectionTracker::Entry {
  // What was authorized; its destination workload as it was then.
  AuthorizationRequest request;
  std::function<void()> close;     // from on_revoke; empty until then
  bool revoked = false;
  std::string reason;
};

ConnectionTracker::Registration::Registration() = default;

ConnectionTracker::Registration::Registration(ConnectionTracker* tracker,
                                              std::unique_ptr<Entry> entry)
    : tracker_(tracker), entry_(std::move(entry)) {}

ConnectionTracker::Registration::Registration(Registration&& other) noexcept
    : tracker_(std::exchange(other.tracker_, nullptr)), entry_(std::move(other.entry_)) {}

ConnectionTracker::Registration& ConnectionTracker::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    release();
    tracker_ = std::exchange(other.tracker_, nullptr);
    entry_ = std::move(other.entry_);
  }
  return *this;
}

ConnectionTracker::Registration::~Registration() { release(); }

void ConnectionTracker::Registration::release() noexcept {
  if (tracker_ && entry_) tracker_->entries_.erase(entry_.get());
  tracker_ = nullptr;
  entry_.reset();
}

void ConnectionTracker::Registration::on_revoke(std::function<void()> close) {
  if (!entry_) return;
  if (entry_->revoked) {
    close();
    return;
  }
  entry_->close = std::move(close);
}

bool ConnectionTracker::Registration::is_revoked() const { return entry_ && entry_->revoked; }

const std::string& ConnectionTracker::Registration::reason() const {
  static const std::string kNone;
  return entry_ ? entry_->reason : kNone;
}

ConnectionTracker::Registration ConnectionTracker::track(AuthorizationRequest request) {
  auto entry = std::make_unique<Entry>(Entry{std::move(request), {}, false, {}});
  entries_.insert(entry.get());
  return Registration(this, std::move(entry));
}

std::size_t ConnectionTracker::recheck(const state::Snapshot& snapshot) {
  // Decide first, close after: a close must not run while entries_ is walked.
  std::vector<Entry*> denied;
  for (Entry* entry : entries_) {
    if (entry->revoked) continue;
    const state::WorkloadPtr& opened_with = entry->request.destination_workload;
    state::WorkloadPtr current = snapshot.workload_by_uid(opened_with->uid);
    const state::Workload& destination = current ? *current : *opened_with;
    rbac::Decision decision =
        rbac::authorize(snapshot, destination, rbac_connection(entry->request));
    log_decision(decision, entry->request, info_logging_);
    if (decision.allowed) continue;
    entry->revoked = true;
    entry->reason = decision.reason;
    denied.push_back(entry);
    log::logger().write(log::Level::kInfo, "authz", kPolicyChange,
                        {{"connection", describe(entry->request)}, {"reason", decision.reason}});
  }
  for (Entry* entry : denied) {
    // Closing completes the connection's pending operations later, from the
    // worker's queue, so no registration can have gone meanwhile; checked
    // anyway, as a close is the one call here that reaches outside.
    if (entries_.contains(entry) && entry->close) entry->close();
  }
  return denied.size();
}

}  // namespace ztunnel::proxy
