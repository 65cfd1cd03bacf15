// A timer loop for background upkeep (certificate renewal, file polling).
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>

namespace ztunnel::identity {

// Calls `tick` every `interval` on `executor` until it returns false. Owners
// capture a weak pointer to themselves and a generation number, and return
// false once they are gone or stopped, so the loop never keeps them alive.
void run_every(boost::asio::any_io_executor executor, std::chrono::steady_clock::duration interval,
               std::function<bool()> tick);

}  // namespace ztunnel::identity
