// aether.hpp - a header-only C++17 RAII wrapper over the C ABI of libaether (aether.h).
//
// Design choices:
//  - Errors are exceptions. A failing call throws aether::Error, which carries the
//    aether_status (status()) and the library's message (what()). A version conflict
//    throws aether::VersionConflict, derived from aether::Error, carrying the actor, the
//    attempted and the current version: optimistic-concurrency loops catch exactly that
//    type, while any other failure is exceptional for a C++ caller. Outcomes that are
//    not failures are not exceptions: polling returns an empty std::optional on timeout
//    and latest_snapshot() an empty one when the actor has none.
//  - aether::Store owns one aether_store handle: move-only, freed by the destructor
//    (which also closes the store). A moved-from Store is empty; calls on it throw
//    aether::Error with AETHER_INVALID_ARGUMENT.
//  - Inputs are std::string_view (JSON and actor IDs, UTF-8), borrowed for the call.
//    Results the library allocates are copied into std::string / std::vector and the
//    library's buffers are released before the call returns, so nothing returned here
//    needs freeing.
//  - Thread safety is the C library's: a Store may be shared by reference across
//    threads and every const member function may run concurrently (close() too, though
//    it is not const); only destruction and move-assignment must not race with calls.
#ifndef AETHER_HPP
#define AETHER_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aether.h"

namespace aether {

// A failed call: the aether_status and the library's message.
class Error : public std::runtime_error {
 public:
  Error(aether_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  aether_status status() const noexcept { return status_; }

 private:
  aether_status status_;
};

// A save whose version is not greater than the actor's latest. Nothing was written.
class VersionConflict : public Error {
 public:
  VersionConflict(const std::string& message, std::string actor_id, std::int64_t attempted,
                  std::int64_t current)
      : Error(AETHER_VERSION_CONFLICT, message),
        actor_id_(std::move(actor_id)),
        attempted_version_(attempted),
        current_version_(current) {}
  const std::string& actor_id() const noexcept { return actor_id_; }
  std::int64_t attempted_version() const noexcept { return attempted_version_; }
  std::int64_t current_version() const noexcept { return current_version_; }

 private:
  std::string actor_id_;
  std::int64_t attempted_version_;
  std::int64_t current_version_;
};

// One EventStored notification, copied out of the library.
struct EventStored {
  std::string event_id;
  std::string actor_id;
  std::int64_t version = 0;
  std::int64_t timestamp_unix_nanos = 0;
  std::uint64_t sequence = 0;
};

using Metrics = aether_metrics;
using SledOptions = aether_sled_options;
using JetStreamOptions = aether_jetstream_options;

// The library's version string (e.g. "0.1.0").
inline std::string_view version() { return aether_version(); }

namespace detail {

// Owns the aether_error a call may produce.
struct ErrorSlot {
  aether_error* err = nullptr;
  ErrorSlot() = default;
  ErrorSlot(const ErrorSlot&) = delete;
  ErrorSlot& operator=(const ErrorSlot&) = delete;
  ~ErrorSlot() { aether_error_free(err); }
};

// Owns an aether_bytes filled by the library.
struct BytesSlot {
  aether_bytes bytes{nullptr, 0};
  BytesSlot() = default;
  BytesSlot(const BytesSlot&) = delete;
  BytesSlot& operator=(const BytesSlot&) = delete;
  ~BytesSlot() { aether_bytes_free(&bytes); }
  std::string str() const {
    return bytes.len == 0 ? std::string()
                          : std::string(reinterpret_cast<const char*>(bytes.ptr), bytes.len);
  }
};

[[noreturn]] inline void throw_error(aether_status status, const aether_error* err) {
  std::string message = err != nullptr ? aether_error_message(err) : aether_status_str(status);
  if (status == AETHER_VERSION_CONFLICT && err != nullptr) {
    const std::uint8_t* actor = nullptr;
    std::size_t actor_len = 0;
    std::int64_t attempted = 0, current = 0;
    if (aether_error_conflict(err, &actor, &actor_len, &attempted, &current) == AETHER_OK) {
      throw VersionConflict(message,
                            std::string(reinterpret_cast<const char*>(actor), actor_len),
                            attempted, current);
    }
  }
  throw Error(status, message);
}

inline void check(aether_status status, const ErrorSlot& slot) {
  if (status != AETHER_OK) {
    throw_error(status, slot.err);
  }
}

// The library refuses NULL even with length 0; an empty view may have a NULL data().
inline const std::uint8_t* data_of(std::string_view s) {
  return reinterpret_cast<const std::uint8_t*>(s.data() != nullptr ? s.data() : "");
}

inline std::string copy(const std::uint8_t* ptr, std::size_t len) {
  return len == 0 ? std::string() : std::string(reinterpret_cast<const char*>(ptr), len);
}

inline EventStored copy_out(const aether_event_stored& n) {
  return EventStored{copy(n.event_id, n.event_id_len), copy(n.actor_id, n.actor_id_len),
                     n.version, n.timestamp_unix_nanos, n.sequence};
}

// Owns notifications filled by the library; clears them even if copying throws.
struct EventStoredSlots {
  std::vector<aether_event_stored> items;
  std::size_t filled = 0;
  explicit EventStoredSlots(std::size_t n) : items(n == 0 ? 1 : n, aether_event_stored{}) {}
  EventStoredSlots(const EventStoredSlots&) = delete;
  EventStoredSlots& operator=(const EventStoredSlots&) = delete;
  ~EventStoredSlots() { aether_event_stored_clear_batch(items.data(), filled); }
};

inline std::int64_t millis(std::chrono::milliseconds timeout) {
  return timeout.count() < 0 ? -1 : static_cast<std::int64_t>(timeout.count());
}

}  // namespace detail

// An open event store. Move-only; the destructor closes and frees it.
class Store {
 public:
  // A new in-memory store. event_stored_capacity 0 = the default (65536).
  static Store open_memory(std::size_t event_stored_capacity = 0) {
    aether_store* handle = nullptr;
    detail::ErrorSlot slot;
    detail::check(aether_store_open_memory(event_stored_capacity, &handle, &slot.err), slot);
    return Store(handle);
  }

  // Open (or create) a persistent store in directory `path`; options nullptr = defaults.
  static Store open_sled(const std::string& path, const SledOptions* options = nullptr) {
    aether_store* handle = nullptr;
    detail::ErrorSlot slot;
    detail::check(aether_store_open_sled(path.c_str(), options, &handle, &slot.err), slot);
    return Store(handle);
  }

  // Connect to a NATS JetStream server or cluster (`url`: "nats://host:port", or a
  // comma-separated list); options nullptr = defaults. Network failures throw with
  // AETHER_UNAVAILABLE or AETHER_TIMEOUT.
  static Store open_jetstream(const std::string& url, const JetStreamOptions* options = nullptr) {
    aether_store* handle = nullptr;
    detail::ErrorSlot slot;
    detail::check(aether_store_open_jetstream(url.c_str(), options, &handle, &slot.err), slot);
    return Store(handle);
  }

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Store& operator=(Store&& other) noexcept {
    if (this != &other) {
      aether_store_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~Store() { aether_store_free(handle_); }

  // Whether this Store holds a handle (false after being moved from).
  explicit operator bool() const noexcept { return handle_ != nullptr; }
  // The C handle, still owned by this Store.
  aether_store* get() const noexcept { return handle_; }

  // Save one event (Go-format JSON); returns its sequence. Throws VersionConflict.
  std::uint64_t save_event(std::string_view json) const {
    std::uint64_t sequence = 0;
    detail::ErrorSlot slot;
    detail::check(aether_save_event(handle_, detail::data_of(json), json.size(), nullptr,
                                    &sequence, &slot.err),
                  slot);
    return sequence;
  }

  // Save a JSON array of one actor's events atomically; returns the last sequence.
  std::uint64_t save_events(std::string_view json_array) const {
    std::uint64_t sequence = 0;
    detail::ErrorSlot slot;
    detail::check(aether_save_events(handle_, detail::data_of(json_array), json_array.size(),
                                     nullptr, &sequence, &slot.err),
                  slot);
    return sequence;
  }

  // The actor's events with version >= from_version, as a JSON array.
  std::string get_events(std::string_view actor_id, std::int64_t from_version = 0) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    detail::check(aether_get_events(handle_, detail::data_of(actor_id), actor_id.size(),
                                    from_version, &out.bytes, &slot.err),
                  slot);
    return out.str();
  }

  // {"events":[...],"errors":[...]}: damaged records reported, not fatal.
  std::string get_events_with_errors(std::string_view actor_id,
                                     std::int64_t from_version = 0) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    detail::check(aether_get_events_with_errors(handle_, detail::data_of(actor_id),
                                                actor_id.size(), from_version, &out.bytes,
                                                &slot.err),
                  slot);
    return out.str();
  }

  // The actor's latest version (0 for an unknown actor).
  std::int64_t latest_version(std::string_view actor_id) const {
    std::int64_t version = 0;
    detail::ErrorSlot slot;
    detail::check(aether_get_latest_version(handle_, detail::data_of(actor_id), actor_id.size(),
                                            &version, &slot.err),
                  slot);
    return version;
  }

  // Up to `limit` events from `from_sequence` on: [{"sequence":N,"event":{...}},...].
  std::string read_all(std::uint64_t from_sequence, std::size_t limit) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    detail::check(aether_read_all(handle_, from_sequence, limit, &out.bytes, &slot.err), slot);
    return out.str();
  }

  // The sequence of the last stored event (0 when empty).
  std::uint64_t last_sequence() const {
    std::uint64_t sequence = 0;
    detail::ErrorSlot slot;
    detail::check(aether_last_sequence(handle_, &sequence, &slot.err), slot);
    return sequence;
  }

  // Store a snapshot (Go-format ActorSnapshot JSON). Throws Error(AETHER_STALE_SNAPSHOT).
  void save_snapshot(std::string_view json) const {
    detail::ErrorSlot slot;
    detail::check(aether_save_snapshot(handle_, detail::data_of(json), json.size(), &slot.err),
                  slot);
  }

  // The actor's latest snapshot as JSON, or empty when it has none.
  std::optional<std::string> latest_snapshot(std::string_view actor_id) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    aether_status status = aether_get_latest_snapshot(handle_, detail::data_of(actor_id),
                                                      actor_id.size(), &out.bytes, &slot.err);
    if (status == AETHER_NOT_FOUND) {
      return std::nullopt;
    }
    detail::check(status, slot);
    return out.str();
  }

  // The next EventStored notification, waiting up to `timeout`; empty on timeout.
  std::optional<EventStored> poll_event_stored(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
    detail::EventStoredSlots n(1);
    detail::ErrorSlot slot;
    aether_status status =
        aether_poll_event_stored(handle_, detail::millis(timeout), n.items.data(), &slot.err);
    if (status == AETHER_POLL_TIMEOUT) {
      return std::nullopt;
    }
    detail::check(status, slot);
    n.filled = 1;
    return detail::copy_out(n.items[0]);
  }

  // Up to `max` notifications: waits up to `timeout` for the first, then takes those
  // already waiting. Empty on timeout.
  std::vector<EventStored> poll_event_stored_batch(
      std::size_t max, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
    detail::EventStoredSlots raw(max);
    std::size_t count = 0;
    detail::ErrorSlot slot;
    aether_status status = aether_poll_event_stored_batch(
        handle_, detail::millis(timeout), raw.items.data(), max, &count, &slot.err);
    std::vector<EventStored> out;
    if (status == AETHER_POLL_TIMEOUT) {
      return out;
    }
    detail::check(status, slot);
    raw.filled = count;
    out.reserve(count);
    for (std::size_t i = 0; i < count; i++) {
      out.push_back(detail::copy_out(raw.items[i]));
    }
    return out;
  }

  // A copy of the store's counters.
  Metrics metrics() const {
    Metrics m{};
    detail::ErrorSlot slot;
    detail::check(aether_store_metrics(handle_, &m, &slot.err), slot);
    return m;
  }

  // Make everything saved so far durable.
  void flush() const {
    detail::ErrorSlot slot;
    detail::check(aether_store_flush(handle_, &slot.err), slot);
  }

  // Close now (idempotent); later calls throw Error(AETHER_STORE_CLOSED). The destructor
  // closes too, but cannot report a failure.
  void close() {
    detail::ErrorSlot slot;
    detail::check(aether_store_close(handle_, &slot.err), slot);
  }

 private:
  explicit Store(aether_store* handle) noexcept : handle_(handle) {}
  aether_store* handle_ = nullptr;
};

}  // namespace aether

#endif  // AETHER_HPP
