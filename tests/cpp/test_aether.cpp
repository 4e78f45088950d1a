// Tests of bindings/cpp/aether.hpp: RAII, move semantics, exceptions, and the whole API.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "aether.hpp"

namespace {

int passed = 0;
int failed = 0;
bool current_failed = false;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      current_failed = true;                                                        \
    }                                                                               \
  } while (0)

// Check that `stmt` throws exactly exception type `type` whose status() is `code`.
#define CHECK_THROWS(stmt, type, code)                                                  \
  do {                                                                                  \
    bool thrown_ = false;                                                               \
    try {                                                                               \
      stmt;                                                                             \
    } catch (const type& e_) {                                                          \
      thrown_ = e_.status() == (code);                                                  \
      if (!thrown_) {                                                                   \
        std::fprintf(stderr, "%s:%d: status %d: %s\n", __FILE__, __LINE__, e_.status(), \
                     e_.what());                                                        \
      }                                                                                 \
    }                                                                                   \
    if (!thrown_) {                                                                     \
      std::fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__, #stmt,   \
                   #code);                                                              \
      current_failed = true;                                                            \
    }                                                                                   \
  } while (0)

void run_test(const char* name, const std::function<void()>& test) {
  current_failed = false;
  try {
    test();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: unexpected exception: %s\n", name, e.what());
    current_failed = true;
  }
  std::printf("%s %s\n", current_failed ? "FAIL" : "ok  ", name);
  (current_failed ? failed : passed)++;
}

std::string event(const std::string& id, const std::string& actor, long long version) {
  return "{\"id\":\"" + id + "\",\"eventType\":\"T\",\"actorId\":\"" + actor +
         "\",\"version\":" + std::to_string(version) +
         ",\"data\":{\"n\":1},\"timestamp\":\"2024-01-02T03:04:05Z\"}";
}

const std::string snapshot2 =
    "{\"actorId\":\"a\",\"version\":2,\"state\":{\"s\":\"x\"},\"timestamp\":\"2024-01-02T03:04:05Z\"}";
const std::string snapshot1 =
    "{\"actorId\":\"a\",\"version\":1,\"state\":null,\"timestamp\":\"2024-01-02T03:04:05Z\"}";

void test_version() {
  CHECK(aether::version() == AETHER_VERSION);
}

void test_save_read_and_conflict() {
  const aether::Store store = aether::Store::open_memory();
  const std::string e1 = event("e1", "a", 1), e2 = event("e2", "a", 2);
  CHECK(store.save_event(e1) == 1);
  CHECK(store.save_events("[" + e2 + "]") == 2);
  CHECK(store.get_events("a") == "[" + e1 + "," + e2 + "]");
  CHECK(store.get_events("a", 2) == "[" + e2 + "]");
  CHECK(store.get_events("") == "[]");
  CHECK(store.get_events(std::string_view()) == "[]");
  CHECK(store.get_events_with_errors("a", 2) == "{\"events\":[" + e2 + "],\"errors\":[]}");
  CHECK(store.latest_version("a") == 2);
  CHECK(store.latest_version("nobody") == 0);
  CHECK(store.last_sequence() == 2);
  CHECK(store.read_all(2, 10) == "[{\"sequence\":2,\"event\":" + e2 + "}]");

  try {
    store.save_event(event("x", "a", 2));
    CHECK(false);
  } catch (const aether::VersionConflict& c) {
    CHECK(c.status() == AETHER_VERSION_CONFLICT);
    CHECK(c.actor_id() == "a");
    CHECK(c.attempted_version() == 2);
    CHECK(c.current_version() == 2);
    CHECK(std::strstr(c.what(), "version conflict") != nullptr);
  }
  // A VersionConflict is an aether::Error too.
  CHECK_THROWS(store.save_event(event("x", "a", 1)), aether::Error, AETHER_VERSION_CONFLICT);
  CHECK_THROWS(store.save_event("{\"id\":1}"), aether::Error, AETHER_INVALID_EVENT);
  CHECK_THROWS(store.save_event(""), aether::Error, AETHER_INVALID_EVENT);
  CHECK_THROWS(store.save_event("\xff"), aether::Error, AETHER_INVALID_ARGUMENT);
  CHECK_THROWS(store.get_events("a", -1), aether::Error, AETHER_INVALID_ARGUMENT);
  CHECK_THROWS(store.poll_event_stored(std::chrono::milliseconds(-5)), aether::Error,
               AETHER_INVALID_ARGUMENT);
  CHECK(store.metrics().events_saved == 2);
  CHECK(store.metrics().version_conflicts == 2);
}

void test_snapshots() {
  const aether::Store store = aether::Store::open_memory();
  CHECK(!store.latest_snapshot("a").has_value());
  store.save_snapshot(snapshot2);
  CHECK(store.latest_snapshot("a") == snapshot2);
  CHECK_THROWS(store.save_snapshot(snapshot1), aether::Error, AETHER_STALE_SNAPSHOT);
  CHECK(store.metrics().snapshots_saved == 1);
}

std::string typed(const std::string& id, const std::string& type, const std::string& actor,
                  long long version) {
  return "{\"id\":\"" + id + "\",\"eventType\":\"" + type + "\",\"actorId\":\"" + actor +
         "\",\"version\":" + std::to_string(version) +
         ",\"data\":{\"n\":1},\"timestamp\":\"2024-01-02T03:04:05Z\"}";
}

std::string snapshot_at(long long version) {
  return "{\"actorId\":\"a\",\"version\":" + std::to_string(version) + ",\"state\":{\"v\":" +
         std::to_string(version) + "},\"timestamp\":\"2024-01-02T03:04:05Z\"}";
}

// How many times `needle` occurs in `hay`.
std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
    n++;
  }
  return n;
}

void test_expected_states() {
  using aether::ExpectedState;
  const aether::Store store = aether::Store::open_memory();
  const std::string a1 = event("a1", "a", 1), a2 = event("a2", "a", 2);
  try {
    store.append("a", ExpectedState::stream_exists(), "[" + a1 + "]");
    CHECK(false);
  } catch (const aether::VersionConflict& c) {
    CHECK(c.conflicts().size() == 1);
    CHECK(c.actor_id() == "a" && c.attempted_version() == 1 && c.current_version() == 0);
    CHECK(c.conflicts()[0].expected == ExpectedState::stream_exists());
  }
  CHECK(store.last_sequence() == 0);
  aether::CommitResult r = store.append("a", ExpectedState::no_stream(), "[" + a1 + "," + a2 + "]");
  CHECK(!r.already_appended && r.first_sequence == 1 && r.last_sequence == 2);
  CHECK(r.last_versions == std::vector<std::int64_t>{2});
  try {
    store.append("a", ExpectedState::exact(1), "[" + event("a3", "a", 3) + "]");
    CHECK(false);
  } catch (const aether::VersionConflict& c) {
    CHECK(c.conflicts()[0].expected == ExpectedState::exact(1));
    CHECK(c.conflicts()[0].expected.version() == 1 && c.current_version() == 2);
  }
  // A conflict is an aether::Error with its status, whatever the mode.
  CHECK_THROWS(store.append("a", ExpectedState::no_stream(), "[" + event("a3", "a", 3) + "]"),
               aether::Error, AETHER_VERSION_CONFLICT);
  CHECK_THROWS(store.append("a", ExpectedState::any(), "[" + event("other", "a", 2) + "]"),
               aether::VersionConflict, AETHER_VERSION_CONFLICT);
  r = store.append("a", ExpectedState::exact(2), "[" + event("a3", "a", 3) + "]");
  CHECK(r.last_sequence == 3 && r.last_versions[0] == 3);
  r = store.append("a", ExpectedState::stream_exists(), "[" + event("a5", "a", 5) + "]");
  r = store.append("a", ExpectedState::any(), "[" + event("a6", "a", 6) + "]");
  r = store.append("a", ExpectedState(), "[" + event("a9", "a", 9) + "]");
  CHECK(r.last_versions[0] == 9 && store.latest_version("a") == 9);
  // Automatic versions.
  r = store.append("a", ExpectedState::any(),
                   "[" + event("auto1", "a", 0) + "," + event("auto2", "a", 0) + "]");
  CHECK(r.last_versions[0] == 11 && r.last_sequence == 8);
  // A retry is not a conflict.
  r = store.append("a", ExpectedState::no_stream(), "[" + a1 + "," + a2 + "]");
  CHECK(r.already_appended && r.first_sequence == 1 && r.last_sequence == 2);
  CHECK(store.last_sequence() == 8);
  CHECK(ExpectedState() == ExpectedState::increasing());
  CHECK(ExpectedState::exact(3) != ExpectedState::exact(4));
  CHECK(ExpectedState::exact(3).mode() == AETHER_EXPECT_EXACT);
}

void test_commit() {
  using aether::CommitEntry;
  using aether::ExpectedState;
  const aether::Store store = aether::Store::open_memory();
  store.save_event(event("b1", "b", 1));
  store.save_event(event("c1", "c", 1));
  const std::string aa = "[" + event("a1", "a", 1) + "," + event("a2", "a", 2) + "]";
  const std::string bb = "[" + event("b2", "b", 2) + "]";
  const std::string cc = "[" + event("c-auto", "c", 0) + "]";
  aether::CommitResult r = store.commit({
      CommitEntry{"a", ExpectedState::no_stream(), aa},
      CommitEntry{"b", ExpectedState::exact(1), bb},
      CommitEntry{"c", ExpectedState::stream_exists(), cc},
      CommitEntry::condition("d", ExpectedState::no_stream()),
  });
  CHECK(!r.already_appended && r.first_sequence == 3 && r.last_sequence == 6);
  CHECK((r.last_versions == std::vector<std::int64_t>{2, 2, 2, 0}));
  CHECK(store.poll_event_stored_batch(10).size() == 6);

  // Two failed conditions, both reported; nothing written.
  try {
    store.commit({
        CommitEntry{"a", ExpectedState::exact(2), "[" + event("a3", "a", 3) + "]"},
        CommitEntry{"b", ExpectedState::exact(1), "[" + event("b9", "b", 9) + "]"},
        CommitEntry{"e", ExpectedState::no_stream(), "[" + event("e1", "e", 1) + "]"},
        CommitEntry::condition("c", ExpectedState::no_stream()),
    });
    CHECK(false);
  } catch (const aether::VersionConflict& c) {
    const std::vector<aether::Conflict>& all = c.conflicts();
    CHECK(all.size() == 2);
    if (all.size() == 2) {
      CHECK(all[0].actor_id == "b" && all[0].expected == ExpectedState::exact(1) &&
            all[0].attempted_version == 9 && all[0].current_version == 2);
      CHECK(all[1].actor_id == "c" && all[1].expected == ExpectedState::no_stream() &&
            all[1].attempted_version == 0 && all[1].current_version == 2);
    }
    CHECK(c.actor_id() == "b");
  }
  CHECK(store.last_sequence() == 6 && store.latest_version("e") == 0);
  CHECK(store.poll_event_stored_batch(10).empty());

  // A retry of the first commit.
  std::vector<CommitEntry> again = {
      CommitEntry{"a", ExpectedState::no_stream(), aa},
      CommitEntry{"b", ExpectedState::exact(1), bb},
  };
  r = store.commit(again);
  CHECK(r.already_appended && r.first_sequence == 3 && r.last_sequence == 5);
  // Conditions only.
  r = store.commit({CommitEntry::condition("a", ExpectedState::exact(2))});
  CHECK(!r.already_appended && r.first_sequence == 0 && r.last_sequence == 0);
  CHECK((r.last_versions == std::vector<std::int64_t>{0}));
  CHECK_THROWS(store.commit({CommitEntry::condition("a", ExpectedState::exact(1))}),
               aether::VersionConflict, AETHER_VERSION_CONFLICT);
  CHECK(store.last_sequence() == 6);
}

void test_appends_bad_input() {
  using aether::CommitEntry;
  using aether::ExpectedState;
  const aether::Store store = aether::Store::open_memory();
  store.save_event(event("a1", "a", 1));
  const std::string a2 = "[" + event("a2", "a", 2) + "]";
  CHECK_THROWS(store.append("a", ExpectedState::exact(-1), a2), aether::Error,
               AETHER_INVALID_ARGUMENT);
  CHECK_THROWS(store.append("a", ExpectedState::from_c(99, 0), a2), aether::Error,
               AETHER_INVALID_ARGUMENT);
  CHECK_THROWS(
      store.append("a", ExpectedState::any(),
                   "[" + event("z", "a", 0) + "," + event("a2", "a", 2) + "]"),
      aether::Error, AETHER_INVALID_EVENT);
  CHECK_THROWS(store.append("a", ExpectedState::any(), ""), aether::Error, AETHER_INVALID_EVENT);
  CHECK_THROWS(store.commit(std::vector<CommitEntry>{}), aether::Error, AETHER_INVALID_ARGUMENT);
  CHECK_THROWS(store.commit({CommitEntry{"a", ExpectedState::any(), a2},
                             CommitEntry::condition("a", ExpectedState::stream_exists())}),
               aether::Error, AETHER_INVALID_ARGUMENT);
  aether::Range reversed;
  reversed.from = 5;
  reversed.to = 4;
  CHECK_THROWS(store.get_events_range("a", reversed), aether::Error, AETHER_INVALID_ARGUMENT);
  aether::Range negative;
  negative.from = -1;
  CHECK_THROWS(store.get_events_range("a", negative), aether::Error, AETHER_INVALID_ARGUMENT);
  aether::EventFilter bad_type;
  bad_type.event_types.push_back("\xff");
  CHECK_THROWS(store.read_all_filtered(1, 10, bad_type), aether::Error, AETHER_INVALID_ARGUMENT);
  CHECK(store.last_sequence() == 1 && store.latest_version("a") == 1);
}

void test_range_and_filtered_reads() {
  const aether::Store store = aether::Store::open_memory();
  for (int v = 1; v <= 10; v++) {
    const char* type = v % 3 == 0 ? "Placed" : "Other";
    store.save_event(typed("o" + std::to_string(v), type, "order-1", v));
    store.save_event(typed("u" + std::to_string(v), type, "user-1", v));
  }
  CHECK(store.get_events_range("order-1", aether::Range::last()) ==
        "[" + typed("o10", "Other", "order-1", 10) + "]");
  aether::Range r;
  r.from = 3;
  r.to = 6;
  r.limit = 2;
  r.direction = aether::Direction::backward;
  CHECK(store.get_events_range("order-1", r) == "[" + typed("o6", "Placed", "order-1", 6) + "," +
                                                    typed("o5", "Other", "order-1", 5) + "]");
  r.direction = aether::Direction::forward;
  CHECK(store.get_events_range("order-1", r) == "[" + typed("o3", "Placed", "order-1", 3) + "," +
                                                    typed("o4", "Other", "order-1", 4) + "]");
  CHECK(count_of(store.get_events_range("order-1"), "\"version\"") == 10);
  CHECK(store.get_events_range("nobody", aether::Range::last(5)) == "[]");

  aether::EventFilter placed;
  placed.event_types = {"Placed"};
  const std::string all_placed = store.read_all_filtered(1, 100, placed);
  CHECK(count_of(all_placed, "\"sequence\"") == 6);
  CHECK(count_of(all_placed, "\"Other\"") == 0);
  CHECK(all_placed.rfind("[{\"sequence\":5,", 0) == 0);
  aether::EventFilter users = placed;
  users.actor_prefix = "user";
  CHECK(store.read_all_filtered(1, 1, users) == store.read_all(6, 1));
  CHECK(count_of(store.read_all_filtered(7, 100, users), "\"sequence\"") == 2);
  CHECK(count_of(store.read_all_filtered(1, 100, aether::EventFilter{}), "\"sequence\"") == 20);
}

void test_snapshot_history() {
  const aether::Store memory = aether::Store::open_memory();
  CHECK(!memory.snapshot_at_or_below("a", 100).has_value());
  for (int v = 2; v <= 8; v += 2) {
    memory.save_snapshot(snapshot_at(v));
  }
  CHECK(memory.snapshot_at_or_below("a", 100) == snapshot_at(8));
  CHECK(memory.snapshot_at_or_below("a", 7) == snapshot_at(6));
  CHECK(memory.snapshot_at_or_below("a", 4) == snapshot_at(4));
  CHECK(!memory.snapshot_at_or_below("a", 3).has_value());  // the default keeps 3
  CHECK(!memory.snapshot_at_or_below("b", 3).has_value());

  char dir[] = "/tmp/aether-cpp-XXXXXX";
  CHECK(mkdtemp(dir) != nullptr);
  {
    const aether::Store sled = aether::Store::open_sled(std::string(dir) + "/s", nullptr, 5);
    for (int v = 2; v <= 8; v += 2) {
      sled.save_snapshot(snapshot_at(v));
    }
    CHECK(sled.snapshot_at_or_below("a", 3) == snapshot_at(2));
    CHECK(sled.snapshot_at_or_below("a", std::numeric_limits<std::int64_t>::max()) ==
          snapshot_at(8));
  }
  std::string rm = "rm -rf '" + std::string(dir) + "'";
  CHECK(std::system(rm.c_str()) == 0);
}

void test_poll() {
  const aether::Store store = aether::Store::open_memory();
  CHECK(!store.poll_event_stored().has_value());
  CHECK(store.poll_event_stored_batch(4, std::chrono::milliseconds(5)).empty());
  for (int v = 1; v <= 5; v++) {
    store.save_event(event("e" + std::to_string(v), "actor", v));
  }
  auto first = store.poll_event_stored(std::chrono::milliseconds(100));
  CHECK(first.has_value());
  CHECK(first->event_id == "e1" && first->actor_id == "actor" && first->version == 1 &&
        first->sequence == 1 && first->timestamp_unix_nanos > 0);
  auto rest = store.poll_event_stored_batch(10);
  CHECK(rest.size() == 4);
  CHECK(rest.back().sequence == 5 && rest.back().event_id == "e5");
  CHECK_THROWS(store.poll_event_stored_batch(0), aether::Error, AETHER_INVALID_ARGUMENT);
}

void test_move_semantics() {
  aether::Store a = aether::Store::open_memory();
  a.save_event(event("e1", "a", 1));
  aether::Store b = std::move(a);
  CHECK(!a);  // NOLINT(bugprone-use-after-move): moved-from is documented as empty
  CHECK(static_cast<bool>(b));
  CHECK(b.latest_version("a") == 1);
  CHECK_THROWS(a.latest_version("a"), aether::Error, AETHER_INVALID_ARGUMENT);

  aether::Store c = aether::Store::open_memory();
  c = std::move(b);  // frees c's own store, takes b's
  CHECK(!b && c.latest_version("a") == 1);
  aether::Store& alias = c;
  c = std::move(alias);  // self-move keeps the store
  CHECK(c.latest_version("a") == 1);

  std::vector<aether::Store> stores;
  stores.push_back(aether::Store::open_memory());
  stores.push_back(std::move(c));
  CHECK(stores[1].latest_version("a") == 1);
}

void test_close() {
  aether::Store store = aether::Store::open_memory();
  store.save_event(event("e1", "a", 1));
  store.flush();
  store.close();
  store.close();
  CHECK_THROWS(store.latest_version("a"), aether::Error, AETHER_STORE_CLOSED);
  CHECK_THROWS(store.save_event(event("e2", "a", 2)), aether::Error, AETHER_STORE_CLOSED);
}

void test_sled_reopen() {
  char dir[] = "/tmp/aether-cpp-XXXXXX";
  CHECK(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/store";
  {
    aether::SledOptions options{};
    options.durability = AETHER_DURABILITY_BUFFERED;
    const aether::Store store = aether::Store::open_sled(path, &options);
    store.save_event(event("e1", "a", 1));
    store.save_snapshot(snapshot2);
  }
  {
    const aether::Store store = aether::Store::open_sled(path);
    CHECK(store.latest_version("a") == 1);
    CHECK(store.latest_snapshot("a") == snapshot2);
    aether::SledOptions options{};
    options.lock_timeout_ms = 20;
    CHECK_THROWS(aether::Store::open_sled(path, &options), aether::Error, AETHER_LOCKED);
  }
  CHECK_THROWS(aether::Store::open_sled(""), aether::Error, AETHER_INVALID_ARGUMENT);
  std::string rm = "rm -rf '" + std::string(dir) + "'";
  CHECK(std::system(rm.c_str()) == 0);
}

void test_shared_across_threads() {
  const aether::Store store = aether::Store::open_memory();
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&store, &wins, &conflicts, t] {
      for (int v = 1; v <= 50; v++) {
        try {
          store.save_event(event("t" + std::to_string(t), "shared", v));
          wins++;
        } catch (const aether::VersionConflict& c) {
          if (c.current_version() >= v) {
            conflicts++;
          }
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(wins == 50 && conflicts == 150);
  CHECK(store.latest_version("shared") == 50);
}

}  // namespace

// The JetStream constructor reports its failures like the others (no server needed: the
// C test runs the backend itself against a real nats-server).
void test_open_jetstream_failures() {
  aether::JetStreamOptions options;
  aether_jetstream_options_default(&options);
  options.stream = "not.a.stream.name";
  CHECK_THROWS(aether::Store::open_jetstream("nats://127.0.0.1:1", &options), aether::Error,
               AETHER_INVALID_ARGUMENT);
  aether_jetstream_options_default(&options);
  options.connect_timeout_ms = 500;
  bool network_error = false;
  try {
    aether::Store::open_jetstream("nats://127.0.0.1:1", &options);
  } catch (const aether::Error& e) {
    network_error = e.status() == AETHER_UNAVAILABLE || e.status() == AETHER_TIMEOUT;
  }
  CHECK(network_error);
}

int main() {
  run_test("test_version", test_version);
  run_test("test_save_read_and_conflict", test_save_read_and_conflict);
  run_test("test_snapshots", test_snapshots);
  run_test("test_expected_states", test_expected_states);
  run_test("test_commit", test_commit);
  run_test("test_appends_bad_input", test_appends_bad_input);
  run_test("test_range_and_filtered_reads", test_range_and_filtered_reads);
  run_test("test_snapshot_history", test_snapshot_history);
  run_test("test_poll", test_poll);
  run_test("test_move_semantics", test_move_semantics);
  run_test("test_close", test_close);
  run_test("test_sled_reopen", test_sled_reopen);
  run_test("test_shared_across_threads", test_shared_across_threads);
  run_test("test_open_jetstream_failures", test_open_jetstream_failures);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
