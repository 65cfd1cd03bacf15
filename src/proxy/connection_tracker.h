// Open inbound connections with their authorization attributes, so that a
// policy change closes the ones it no longer allows (Istio's
// ConnectionManager and PolicyWatcher).
//
// Threading: a tracker belongs to one worker. Connections register from
// their coroutines on that worker and a store update posts recheck() to it,
// so nothing here is locked.
// Closing: a connection hands its registration a callback that cuts both of
// its ends (on_revoke); a re-check that denies it calls the callback, and
// the connection's copy, its reads failing, ends by itself. No timer and no
// `||` race per connection: those cost ~3.5 KiB per idle tunnel in
// coroutine frames (measured with tools/bench/run --only conns).
// Lifetime: the tracker must outlive its registrations. Listeners hold it
// through ProxyInputs and every connection coroutine holds its listener.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "proxy/inputs.h"
#include "rbac/rbac.h"
#include "state/store.h"

namespace ztunnel::proxy {

class ConnectionTracker {
  struct Entry;

 public:
  // `info_logging`: AUTHZ_POLICY_INFO_LOGGING, for the re-check's decisions.
  explicit ConnectionTracker(bool info_logging = false) : info_logging_(info_logging) {}
  ConnectionTracker(const ConnectionTracker&) = delete;
  ConnectionTracker& operator=(const ConnectionTracker&) = delete;

  // One tracked connection; deregisters when destroyed.
  class Registration {
   public:
    Registration();  // empty: tracks nothing
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();

    // What a revocation does: close the connection (abort its sockets, reset
    // its stream). Runs on the tracker's worker, from recheck(), after every
    // decision of that re-check is made; at once if already revoked. It must
    // not resume coroutines inline (closing and cancelling never do).
    void on_revoke(std::function<void()> close);
    // A re-check denied the connection. An empty registration never is.
    bool is_revoked() const;
    // The decision's reason ("explicitly denied by: ns/name", ...) once revoked.
    const std::string& reason() const;

   private:
    friend class ConnectionTracker;
    Registration(ConnectionTracker* tracker, std::unique_ptr<Entry> entry);
    void release() noexcept;
    ConnectionTracker* tracker_ = nullptr;
    std::unique_ptr<Entry> entry_;
  };

  // Tracks a connection that has just been allowed (`request` is what was
  // authorized). Register before the next co_await after the decision, so
  // that no re-check can run between the two (a policy published meanwhile is
  // then re-checked against this connection). The close log line describes
  // the connection from `request` (describe()), only if it is ever closed.
  Registration track(AuthorizationRequest request);

  // Re-authorizes every tracked connection against `snapshot`: the
  // destination workload as the snapshot has it now (its policy list may have
  // changed), else as it was when the connection opened. Denied connections
  // are revoked and logged; allowed ones are not touched. Returns how many
  // were revoked.
  std::size_t recheck(const state::Snapshot& snapshot);

  std::size_t size() const { return entries_.size(); }

 private:
  bool info_logging_;
  std::unordered_set<Entry*> entries_;
};

}  // namespace ztunnel::proxy
