// ConnectionTracker: registrations, and the re-check that revokes what a new snapshot denies.
#include "proxy/connection_tracker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <utility>

#include "core/log.h"
#include "proxy/authorization.h"

namespace ztunnel::proxy {

namespace asio = boost::asio;

struct ConnectionTracker::Entry {
  Entry(asio::any_io_executor executor, rbac::Connection connection, state::WorkloadPtr destination,
        std::string description)
      : connection(std::move(connection)),
        destination(std::move(destination)),
        description(std::move(description)),
        wake(std::move(executor), asio::steady_timer::time_point::max()) {}

  rbac::Connection connection;
  state::WorkloadPtr destination;  // as it was when the connection opened
  std::string description;
  asio::steady_timer wake;  // parked; cancelled on revocation
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

asio::awaitable<void> ConnectionTracker::Registration::revoked() {
  if (!entry_) {
    // Nothing can revoke it: wait until the partner of the `||` cancels us.
    asio::steady_timer never(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
    co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return;
  }
  if (entry_->revoked) co_return;
  co_await entry_->wake.async_wait(asio::as_tuple(asio::use_awaitable));
}

bool ConnectionTracker::Registration::is_revoked() const { return entry_ && entry_->revoked; }

const std::string& ConnectionTracker::Registration::reason() const {
  static const std::string kNone;
  return entry_ ? entry_->reason : kNone;
}

ConnectionTracker::Registration ConnectionTracker::track(asio::any_io_executor executor,
                                                         rbac::Connection connection,
                                                         state::WorkloadPtr destination,
                                                         std::string description) {
  auto entry = std::make_unique<Entry>(std::move(executor), std::move(connection),
                                       std::move(destination), std::move(description));
  entries_.insert(entry.get());
  return Registration(this, std::move(entry));
}

std::size_t ConnectionTracker::recheck(const state::Snapshot& snapshot) {
  std::size_t closed = 0;
  // Revoking only cancels a timer; the completions run after this loop, so
  // no registration is destroyed while entries_ is being walked.
  for (Entry* entry : entries_) {
    if (entry->revoked) continue;
    state::WorkloadPtr current = snapshot.workload_by_uid(entry->destination->uid);
    const state::Workload& destination = current ? *current : *entry->destination;
    rbac::Decision decision = rbac::authorize(snapshot, destination, entry->connection);
    log_decision(decision, entry->description, info_logging_);
    if (decision.allowed) continue;
    entry->revoked = true;
    entry->reason = decision.reason;
    entry->wake.cancel();
    ++closed;
    log::logger().write(log::Level::kInfo, "authz", kPolicyChange,
                        {{"connection", entry->description}, {"reason", decision.reason}});
  }
  return closed;
}

}  // namespace ztunnel::proxy
