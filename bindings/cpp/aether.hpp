// aether.hpp - a header-only C++17 RAII wrapper over the C ABI of libaether (aether.h).
//
// Design choices:
//  - Errors are exceptions. A failing call throws aether::Error, which carries the
//    aether_status (status()) and the library's message (what()). A version conflict
//    throws aether::VersionConflict, derived from aether::Error, carrying the actor, the
//    attempted and the current version: optimistic-concurrency loops catch exactly that
//    type, while any other failure is exceptional for a C++ caller. A commit whose
//    conditions fail throws the same VersionConflict, with every failed condition in
//    conflicts(). Outcomes that are not failures are not exceptions: polling returns an
//    empty std::optional on timeout, latest_snapshot() and snapshot_at_or_below() an
//    empty one when there is no such snapshot, and a retry of a stored commit returns a
//    CommitResult with already_appended set.
//  - aether::Store owns one aether_store handle: move-only, freed by the destructor
//    (a release without the closing checkpoint: call close() to checkpoint and see a
//    failure; nothing acknowledged is lost either way). A moved-from Store is empty; calls on it throw
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
#include <initializer_list>
#include <limits>
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

// What an append expects of an actor's stream (the C ABI's aether_expected_mode and
// expected version). Whatever the expectation, explicit versions must be greater than
// the actor's latest.
class ExpectedState {
 public:
  // The seed's rule and the default: the first event's version is above the latest.
  constexpr ExpectedState() noexcept = default;
  static constexpr ExpectedState increasing() noexcept { return {}; }
  // No expectation (KurrentDB's "any"): the same check as increasing().
  static constexpr ExpectedState any() noexcept { return ExpectedState(AETHER_EXPECT_ANY, 0); }
  // The actor has no events.
  static constexpr ExpectedState no_stream() noexcept {
    return ExpectedState(AETHER_EXPECT_NO_STREAM, 0);
  }
  // The actor has at least one event.
  static constexpr ExpectedState stream_exists() noexcept {
    return ExpectedState(AETHER_EXPECT_STREAM_EXISTS, 0);
  }
  // The actor's latest version is exactly `version` (0: no events; negative versions
  // are refused by the library with AETHER_INVALID_ARGUMENT).
  static constexpr ExpectedState exact(std::int64_t version) noexcept {
    return ExpectedState(AETHER_EXPECT_EXACT, version);
  }

  // An aether_expected_mode value (an int, as the C ABI takes it: from_c() may carry a
  // value the library does not know, which it refuses).
  constexpr int mode() const noexcept { return mode_; }
  // The version exact() expects; 0 for the other modes.
  constexpr std::int64_t version() const noexcept { return version_; }
  constexpr bool operator==(const ExpectedState& o) const noexcept {
    return mode_ == o.mode_ && version_ == o.version_;
  }
  constexpr bool operator!=(const ExpectedState& o) const noexcept { return !(*this == o); }

  // As the library reports it (aether_error_conflict_at); an unknown mode is kept as is.
  static constexpr ExpectedState from_c(int mode, std::int64_t version) noexcept {
    return ExpectedState(mode, mode == AETHER_EXPECT_EXACT ? version : 0);
  }

 private:
  constexpr ExpectedState(int mode, std::int64_t version) noexcept
      : mode_(mode), version_(version) {}
  int mode_ = AETHER_EXPECT_INCREASING;
  std::int64_t version_ = 0;
};

// One failed condition of a save, an append or a commit.
struct Conflict {
  std::string actor_id;
  // What the entry expected (increasing() for aether_save_event's rule).
  ExpectedState expected;
  // The version of the entry's first event (0: automatic versions, or condition-only).
  std::int64_t attempted_version = 0;
  // The actor's latest version when the call was checked.
  std::int64_t current_version = 0;
};

// A save, append or commit whose conditions did not hold. Nothing was written.
// actor_id(), attempted_version() and current_version() describe the first failed
// condition; conflicts() lists every one (a commit reports all of them at once).
class VersionConflict : public Error {
 public:
  VersionConflict(const std::string& message, std::string actor_id, std::int64_t attempted,
                  std::int64_t current)
      : VersionConflict(message,
                        std::vector<Conflict>{Conflict{std::move(actor_id),
                                                       ExpectedState::increasing(), attempted,
                                                       current}}) {}
  VersionConflict(const std::string& message, std::vector<Conflict> conflicts)
      : Error(AETHER_VERSION_CONFLICT, message), conflicts_(std::move(conflicts)) {
    if (conflicts_.empty()) {
      conflicts_.push_back(Conflict{});
    }
  }
  const std::string& actor_id() const noexcept { return conflicts_.front().actor_id; }
  std::int64_t attempted_version() const noexcept { return conflicts_.front().attempted_version; }
  std::int64_t current_version() const noexcept { return conflicts_.front().current_version; }
  // Every failed condition, in entry order (never empty).
  const std::vector<Conflict>& conflicts() const noexcept { return conflicts_; }

 private:
  std::vector<Conflict> conflicts_;
};

// One actor's part of Store::commit(): its expectation and a JSON array of its events.
// An empty events_json makes a condition-only entry, which checks the actor and writes
// nothing to it. The views are borrowed for the call only.
struct CommitEntry {
  std::string_view actor_id;
  ExpectedState expected;
  std::string_view events_json;

  // A condition-only entry.
  static CommitEntry condition(std::string_view actor_id, ExpectedState expected) {
    return CommitEntry{actor_id, expected, std::string_view()};
  }
};

// What an append or a commit did.
struct CommitResult {
  // True when every event was already stored (a retry of a commit that succeeded):
  // nothing was written and no EventStored was published.
  bool already_appended = false;
  // The sequences of the first and last event (0 and 0 when no event was written);
  // a commit's events have consecutive sequences, in entry order.
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  // Per entry, the version of its last event (0 for a condition-only entry): as
  // written (automatic versions: the one assigned), or as found stored by a retry.
  // One value for append().
  std::vector<std::int64_t> last_versions;
};

// Which way a range read runs.
enum class Direction { forward = AETHER_FORWARD, backward = AETHER_BACKWARD };

// A bounded read of one actor's events: versions from..to (inclusive), at most limit,
// oldest or newest first. Range::last() is the actor's last event.
struct Range {
  std::int64_t from = 0;
  std::int64_t to = std::numeric_limits<std::int64_t>::max();
  std::size_t limit = std::numeric_limits<std::size_t>::max();
  Direction direction = Direction::forward;

  // The newest n events, newest first.
  static Range last(std::size_t n = 1) {
    Range r;
    r.limit = n;
    r.direction = Direction::backward;
    return r;
  }
};

// Which events read_all_filtered() returns: an event type in event_types (any when
// empty) and an actor ID starting with actor_prefix. Applied inside the store.
struct EventFilter {
  std::vector<std::string> event_types;
  std::string actor_prefix;
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
    std::vector<Conflict> conflicts;
    const std::size_t n = aether_error_conflict_count(err);
    conflicts.reserve(n);
    for (std::size_t i = 0; i < n; i++) {
      const std::uint8_t* actor = nullptr;
      std::size_t actor_len = 0;
      int mode = 0;
      std::int64_t expected = 0, attempted = 0, current = 0;
      if (aether_error_conflict_at(err, i, &actor, &actor_len, &mode, &expected, &attempted,
                                   &current) == AETHER_OK) {
        conflicts.push_back(Conflict{
            actor_len == 0 ? std::string()
                           : std::string(reinterpret_cast<const char*>(actor), actor_len),
            ExpectedState::from_c(mode, expected), attempted, current});
      }
    }
    if (!conflicts.empty()) {
      throw VersionConflict(message, std::move(conflicts));
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

// An open event store. Move-only; the destructor releases it (close() first to
// checkpoint and to see a failure).
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
  // snapshot_retention: snapshots kept per actor (the newest; 0 = 3).
  static Store open_sled(const std::string& path, const SledOptions* options = nullptr,
                         std::uint32_t snapshot_retention = 0) {
    aether_store* handle = nullptr;
    detail::ErrorSlot slot;
    detail::check(aether_store_open_sled_with_snapshot_retention(path.c_str(), options,
                                                                 snapshot_retention, &handle,
                                                                 &slot.err),
                  slot);
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

  // The actor's newest kept snapshot with version <= at_or_below, as JSON, or empty when
  // none is kept (never taken, or dropped by the store's retention: 3 per actor unless
  // open_sled() was given another snapshot_retention).
  std::optional<std::string> snapshot_at_or_below(std::string_view actor_id,
                                                  std::int64_t at_or_below) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    aether_status status = aether_get_snapshot(handle_, detail::data_of(actor_id),
                                               actor_id.size(), at_or_below, &out.bytes,
                                               &slot.err);
    if (status == AETHER_NOT_FOUND) {
      return std::nullopt;
    }
    detail::check(status, slot);
    return out.str();
  }

  // Append a JSON array of the actor's events if `expected` holds; events with version
  // 0 get the actor's next versions. Throws VersionConflict (nothing written); a retry
  // of an append that succeeded returns already_appended instead. last_versions holds
  // the version of the last event.
  CommitResult append(std::string_view actor_id, ExpectedState expected,
                      std::string_view events_json) const {
    aether_commit_result r{};
    std::int64_t last = 0;
    detail::ErrorSlot slot;
    detail::check(aether_append(handle_, detail::data_of(actor_id), actor_id.size(),
                                expected.mode(), expected.version(),
                                detail::data_of(events_json), events_json.size(), &r, &last,
                                &slot.err),
                  slot);
    return CommitResult{r.already_appended != 0, r.first_sequence, r.last_sequence, {last}};
  }

  // Append to several actors at once, all or nothing (one entry per actor). If any
  // condition fails, throws VersionConflict listing every failed condition, and nothing
  // is written.
  CommitResult commit(const std::vector<CommitEntry>& entries) const {
    return commit(entries.data(), entries.size());
  }
  CommitResult commit(std::initializer_list<CommitEntry> entries) const {
    return commit(entries.begin(), entries.size());
  }
  CommitResult commit(const CommitEntry* entries, std::size_t count) const {
    std::vector<aether_commit_entry> raw;
    raw.reserve(count);
    for (std::size_t i = 0; i < count; i++) {
      const CommitEntry& e = entries[i];
      raw.push_back(aether_commit_entry{
          detail::data_of(e.actor_id), e.actor_id.size(), e.expected.mode(),
          e.expected.version(),
          // An empty view is a condition-only entry: NULL with length 0.
          e.events_json.empty() ? nullptr
                                : reinterpret_cast<const std::uint8_t*>(e.events_json.data()),
          e.events_json.size()});
    }
    aether_commit_result r{};
    std::vector<std::int64_t> lasts(count, 0);
    detail::ErrorSlot slot;
    // No entries throws Error(AETHER_INVALID_ARGUMENT), as the library refuses them.
    detail::check(aether_commit(handle_, raw.data(), count, &r, lasts.data(), &slot.err), slot);
    return CommitResult{r.already_appended != 0, r.first_sequence, r.last_sequence,
                        std::move(lasts)};
  }

  // The actor's events in `range` as a JSON array (see Range). Throws Error with
  // AETHER_INVALID_ARGUMENT for a reversed range or a negative `from`.
  std::string get_events_range(std::string_view actor_id, const Range& range = Range()) const {
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    detail::check(aether_get_events_range(handle_, detail::data_of(actor_id), actor_id.size(),
                                          range.from, range.to, range.limit,
                                          static_cast<int>(range.direction), &out.bytes,
                                          &slot.err),
                  slot);
    return out.str();
  }

  // read_all() of the events `filter` accepts: up to `limit` of them with sequence >=
  // from_sequence, in sequence order. The filter runs inside the store.
  std::string read_all_filtered(std::uint64_t from_sequence, std::size_t limit,
                                const EventFilter& filter) const {
    std::vector<aether_str> types;
    types.reserve(filter.event_types.size());
    for (const std::string& t : filter.event_types) {
      types.push_back(aether_str{detail::data_of(t), t.size()});
    }
    aether_event_filter raw{types.empty() ? nullptr : types.data(), types.size(),
                            filter.actor_prefix.empty() ? nullptr
                                                        : detail::data_of(filter.actor_prefix),
                            filter.actor_prefix.size()};
    detail::BytesSlot out;
    detail::ErrorSlot slot;
    detail::check(
        aether_read_all_filtered(handle_, from_sequence, limit, &raw, &out.bytes, &slot.err),
        slot);
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
