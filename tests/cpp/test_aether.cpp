// Tests of bindings/cpp/aether.hpp: RAII, move semantics, exceptions, and the whole API.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
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
  run_test("test_poll", test_poll);
  run_test("test_move_semantics", test_move_semantics);
  run_test("test_close", test_close);
  run_test("test_sled_reopen", test_sled_reopen);
  run_test("test_shared_across_threads", test_shared_across_threads);
  run_test("test_open_jetstream_failures", test_open_jetstream_failures);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
