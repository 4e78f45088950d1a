/*
 * The C interface on the NATS JetStream backend: a reduced conformance set (save, reads,
 * conflicts with the current version, batches, read_all, snapshots, EventStored), two
 * handles sharing one stream, option and argument checks, and a server that is down at
 * open time (AETHER_UNAVAILABLE or AETHER_TIMEOUT within the connect timeout).
 *
 * Starts its own nats-server (-js on 127.0.0.1, a free port, a temporary store folder)
 * and kills it at the end. Without nats-server on PATH it fails, saying so, unless
 * AETHER_SKIP_JETSTREAM=1 (then it prints SKIPPED and succeeds).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EV(buf, id, actor, version) event_json((buf), sizeof(buf), (id), (actor), (version))

static pid_t server_pid = -1;
static char *server_dir;
static char server_url[64];
/* Each test gets its own stream and subject prefix on the shared server. */
static int stream_counter;

static int nats_server_on_path(void) {
  const char *path = getenv("PATH");
  char candidate[4096];
  const char *p = path;
  if (path == NULL) {
    return 0;
  }
  while (*p != '\0') {
    const char *end = strchr(p, ':');
    size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
    if (len > 0 && len + sizeof("/nats-server") < sizeof(candidate)) {
      memcpy(candidate, p, len);
      memcpy(candidate + len, "/nats-server", sizeof("/nats-server"));
      if (access(candidate, X_OK) == 0) {
        return 1;
      }
    }
    if (end == NULL) {
      break;
    }
    p = end + 1;
  }
  return 0;
}

/* A TCP port on 127.0.0.1 nobody listens on right now. */
static int free_port(void) {
  struct sockaddr_in addr;
  socklen_t len = sizeof(addr);
  int port;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("socket");
    exit(EXIT_FAILURE);
  }
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    perror("bind");
    exit(EXIT_FAILURE);
  }
  port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

static int port_accepts(int port) {
  struct sockaddr_in addr;
  int ok;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return 0;
  }
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)port);
  ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
  close(fd);
  return ok;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec t;
  t.tv_sec = ms / 1000;
  t.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&t, NULL);
}

static void stop_server(void) {
  if (server_pid > 0) {
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
  }
  remove_temp_dir(server_dir);
  server_dir = NULL;
}

/* Start `nats-server -js` on a free port with its store in a fresh temporary folder;
 * return once it accepts connections. Exits the test program if it does not. */
static void start_server(void) {
  char port_arg[16], store_dir[4096], log_path[4096];
  int port = free_port();
  double deadline;
  server_dir = make_temp_dir();
  snprintf(port_arg, sizeof(port_arg), "%d", port);
  snprintf(store_dir, sizeof(store_dir), "%s/js", server_dir);
  snprintf(log_path, sizeof(log_path), "%s/server.log", server_dir);
  snprintf(server_url, sizeof(server_url), "nats://127.0.0.1:%d", port);
  fflush(stdout);
  fflush(stderr);
  server_pid = fork();
  if (server_pid < 0) {
    perror("fork");
    exit(EXIT_FAILURE);
  }
  if (server_pid == 0) {
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
    }
    execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port_arg, "-sd",
           store_dir, (char *)NULL);
    _exit(127);
  }
  deadline = now_ms() + 10000.0;
  while (!port_accepts(port)) {
    int status;
    if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
      fprintf(stderr, "nats-server exited before listening (see %s)\n", log_path);
      server_pid = -1;
      exit(EXIT_FAILURE);
    }
    if (now_ms() > deadline) {
      fprintf(stderr, "nats-server did not listen on port %d within 10 s (see %s)\n", port,
              log_path);
      exit(EXIT_FAILURE);
    }
    sleep_ms(20);
  }
}

/* A fresh stream on the shared server; stream_out receives its name. Exits on failure
 * (retrying briefly while JetStream finishes starting). */
static aether_store *open_js_named(char *stream_out, size_t cap, int reuse) {
  char prefix[64];
  aether_jetstream_options o;
  aether_store *store = NULL;
  aether_error *err = NULL;
  aether_status status;
  double deadline = now_ms() + 10000.0;
  if (!reuse) {
    stream_counter++;
    snprintf(stream_out, cap, "C_TEST_%d", stream_counter);
  }
  snprintf(prefix, sizeof(prefix), "ctest%s", stream_out + strlen("C_TEST_"));
  aether_jetstream_options_default(&o);
  o.stream = stream_out;
  o.subject_prefix = prefix;
  o.connect_timeout_ms = 5000;
  o.request_timeout_ms = 5000;
  for (;;) {
    status = aether_store_open_jetstream(server_url, &o, &store, &err);
    if (status == AETHER_OK) {
      return store;
    }
    if ((status != AETHER_UNAVAILABLE && status != AETHER_TIMEOUT) || now_ms() > deadline) {
      break;
    }
    aether_error_free(err);
    err = NULL;
    sleep_ms(100);
  }
  fprintf(stderr, "cannot open a JetStream store at %s: %s (%s)\n", server_url,
          aether_status_str((int)status), aether_error_message(err));
  aether_error_free(err);
  exit(EXIT_FAILURE);
}

static aether_store *open_js(void) {
  static char stream[64];
  return open_js_named(stream, sizeof(stream), 0);
}

static void close_js(aether_store *s) {
  CHECK_OK(aether_store_close(s, NULL));
  aether_store_free(s);
}

static void test_options_default(void) {
  aether_jetstream_options o;
  memset(&o, 0xAB, sizeof(o));
  aether_jetstream_options_default(&o);
  CHECK(o.stream == NULL && o.subject_prefix == NULL && o.credentials_file == NULL);
  CHECK(o.replicas == 0 && o.connect_timeout_ms == 0 && o.request_timeout_ms == 0);
  CHECK(o.event_stored_capacity == 0);
  aether_jetstream_options_default(NULL); /* a no-op */
}

static void test_bad_arguments(void) {
  aether_store *marker = (aether_store *)&stream_counter; /* never dereferenced */
  aether_store *store = marker;
  aether_error *err = NULL;
  aether_jetstream_options o;

  CHECK_STATUS_ERR(aether_store_open_jetstream(NULL, NULL, &store, &err),
                   AETHER_INVALID_ARGUMENT, err);
  CHECK_STATUS(aether_store_open_jetstream(server_url, NULL, NULL, NULL),
               AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_store_open_jetstream("", NULL, &store, NULL), AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_store_open_jetstream("\xff\xfe", NULL, &store, NULL),
               AETHER_INVALID_ARGUMENT);
  aether_jetstream_options_default(&o);
  o.stream = "has.dots";
  CHECK_STATUS_ERR(aether_store_open_jetstream(server_url, &o, &store, &err),
                   AETHER_INVALID_ARGUMENT, err);
  aether_jetstream_options_default(&o);
  o.subject_prefix = "a..b";
  CHECK_STATUS(aether_store_open_jetstream(server_url, &o, &store, NULL),
               AETHER_INVALID_ARGUMENT);
  aether_jetstream_options_default(&o);
  o.replicas = 6;
  CHECK_STATUS(aether_store_open_jetstream(server_url, &o, &store, NULL),
               AETHER_INVALID_ARGUMENT);
  aether_jetstream_options_default(&o);
  o.credentials_file = "/nonexistent/aether-test.creds";
  CHECK_STATUS(aether_store_open_jetstream(server_url, &o, &store, NULL),
               AETHER_INVALID_ARGUMENT);
  CHECK(store == marker); /* untouched on every error */
}

static void test_save_and_get(void) {
  aether_store *s = open_js();
  char e1[512], e2[512], e3[512], want[2048];
  aether_bytes out = {NULL, 0};
  int64_t version = -1;
  uint64_t sequence = 0;

  CHECK_OK(aether_get_latest_version(s, STR("order-1"), &version, NULL));
  CHECK(version == 0);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 0);

  CHECK_OK(aether_save_event(s, STR(EV(e1, "e1", "order-1", 1)), &version, &sequence, NULL));
  CHECK(version == 1 && sequence == 1);
  CHECK_OK(aether_save_event(s, STR(EV(e2, "e2", "order-1", 2)), NULL, &sequence, NULL));
  CHECK(sequence == 2);
  CHECK_OK(aether_save_event(s, STR(EV(e3, "e3", "order-1", 3)), NULL, NULL, NULL));

  CHECK_OK(aether_get_events(s, STR("order-1"), 0, &out, NULL));
  snprintf(want, sizeof(want), "[%s,%s,%s]", e1, e2, e3);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  /* from_version is inclusive. */
  CHECK_OK(aether_get_events(s, STR("order-1"), 2, &out, NULL));
  snprintf(want, sizeof(want), "[%s,%s]", e2, e3);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_get_events(s, STR("order-1"), 4, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  CHECK_OK(aether_get_events(s, STR("nobody"), 0, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);

  CHECK_OK(aether_get_latest_version(s, STR("order-1"), &version, NULL));
  CHECK(version == 3);
  CHECK_OK(aether_get_latest_version(s, STR("nobody"), &version, NULL));
  CHECK(version == 0);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 3);
  close_js(s);
}

static void test_conflict(void) {
  aether_store *s = open_js();
  char e[512];
  int64_t current = -1, attempted = -1;
  uint64_t sequence = 777;
  aether_error *err = NULL;
  const uint8_t *actor = NULL;
  size_t actor_len = 0;

  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "order-1", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(e, "e2", "order-1", 2)), NULL, NULL, NULL));
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "other", "order-1", 1)), &current, &sequence, &err),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 2);
  CHECK(sequence == 777); /* untouched */
  CHECK(aether_error_code(err) == AETHER_VERSION_CONFLICT);
  CHECK_OK(aether_error_conflict(err, &actor, &actor_len, &attempted, &current));
  CHECK(actor_len == 7 && memcmp(actor, "order-1", 7) == 0);
  CHECK(attempted == 1 && current == 2);
  aether_error_free(err);
  err = NULL;
  /* Saving the stored version again, even with the same event, is a conflict too. */
  current = -1;
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "e2", "order-1", 2)), &current, NULL, NULL),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 2);
  close_js(s);
}

static void test_batch(void) {
  aether_store *s = open_js();
  char e1[512], e2[512], e3[512], batch[2048], want[2048];
  int64_t current = -1;
  uint64_t last = 0;
  aether_bytes out = {NULL, 0};

  EV(e1, "e1", "cart", 1);
  EV(e2, "e2", "cart", 2);
  snprintf(batch, sizeof(batch), "[%s,%s]", e1, e2);
  CHECK_OK(aether_save_events(s, STR(batch), &current, &last, NULL));
  CHECK(current == 2 && last == 2);

  /* A conflict on the first event: nothing of the batch is written. */
  EV(e3, "e3", "cart", 3);
  snprintf(batch, sizeof(batch), "[%s,%s]", EV(e1, "x2", "cart", 2), e3);
  last = 99;
  CHECK_STATUS(aether_save_events(s, STR(batch), &current, &last, NULL), AETHER_VERSION_CONFLICT);
  CHECK(current == 2 && last == 99);
  /* Mixed actors are refused before anything is sent. */
  snprintf(batch, sizeof(batch), "[%s,%s]", e3, EV(e1, "o", "other", 4));
  CHECK_STATUS(aether_save_events(s, STR(batch), NULL, NULL, NULL), AETHER_INVALID_EVENT);

  EV(e1, "e1", "cart", 1);
  snprintf(want, sizeof(want), "[%s,%s]", e1, e2);
  CHECK_OK(aether_get_events(s, STR("cart"), 0, &out, NULL));
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_last_sequence(s, &last, NULL));
  CHECK(last == 2);
  close_js(s);
}

static void test_read_all(void) {
  aether_store *s = open_js();
  char a1[512], b1[512], a2[512], batch[1024], want[4096];
  aether_bytes out = {NULL, 0};

  CHECK_OK(aether_save_event(s, STR(EV(a1, "a1", "a", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(b1, "b1", "b", 1)), NULL, NULL, NULL));
  snprintf(batch, sizeof(batch), "[%s]", EV(a2, "a2", "a", 2));
  CHECK_OK(aether_save_events(s, STR(batch), NULL, NULL, NULL));

  CHECK_OK(aether_read_all(s, 0, 100, &out, NULL));
  snprintf(want, sizeof(want),
           "[{\"sequence\":1,\"event\":%s},{\"sequence\":2,\"event\":%s},"
           "{\"sequence\":3,\"event\":%s}]",
           a1, b1, a2);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_read_all(s, 2, 1, &out, NULL));
  snprintf(want, sizeof(want), "[{\"sequence\":2,\"event\":%s}]", b1);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_read_all(s, 4, 10, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  close_js(s);
}

static void test_snapshots(void) {
  aether_store *s = open_js();
  static const char snap2[] = "{\"actorId\":\"order-1\",\"version\":2,\"state\":{\"total\":42},"
                              "\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  static const char snap1[] = "{\"actorId\":\"order-1\",\"version\":1,\"state\":null,"
                              "\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  uint8_t marker = 0;
  aether_bytes out = {&marker, 12345};
  aether_error *err = NULL;

  CHECK_STATUS(aether_get_latest_snapshot(s, STR("order-1"), &out, NULL), AETHER_NOT_FOUND);
  CHECK(out.ptr == &marker && out.len == 12345); /* untouched */
  CHECK_STATUS_ERR(aether_save_snapshot(s, STR(snap2), &err), AETHER_OK, err);
  CHECK_OK(aether_get_latest_snapshot(s, STR("order-1"), &out, NULL));
  CHECK_BYTES_EQ(out, snap2);
  aether_bytes_free(&out);
  CHECK_STATUS(aether_save_snapshot(s, STR(snap1), NULL), AETHER_STALE_SNAPSHOT);
  close_js(s);
}

static void check_notification(const aether_event_stored *n, const char *id, const char *actor,
                               int64_t version, uint64_t sequence) {
  CHECK(n->event_id_len == strlen(id) && memcmp(n->event_id, id, n->event_id_len) == 0);
  CHECK(n->actor_id_len == strlen(actor) && memcmp(n->actor_id, actor, n->actor_id_len) == 0);
  CHECK(n->version == version);
  CHECK(n->sequence == sequence);
  CHECK(n->timestamp_unix_nanos > 0);
}

static void test_poll(void) {
  aether_store *s = open_js();
  char e[512], batch[1024], e2[512];
  aether_event_stored n = {0}, many[3] = {{0}};
  size_t count = 99;

  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "a", 1)), NULL, NULL, NULL));
  snprintf(batch, sizeof(batch), "[%s,%s]", EV(e, "e2", "b", 1), EV(e2, "e3", "b", 2));
  CHECK_OK(aether_save_events(s, STR(batch), NULL, NULL, NULL));

  CHECK_OK(aether_poll_event_stored(s, 5000, &n, NULL));
  check_notification(&n, "e1", "a", 1, 1);
  aether_event_stored_clear(&n);
  CHECK_OK(aether_poll_event_stored_batch(s, 5000, many, 3, &count, NULL));
  CHECK(count >= 1);
  if (count == 1) { /* the batch's second notification may still be on its way */
    size_t more = 0;
    CHECK_OK(aether_poll_event_stored_batch(s, 5000, many + 1, 2, &more, NULL));
    count += more;
  }
  CHECK(count == 2);
  if (count == 2) {
    check_notification(&many[0], "e2", "b", 1, 2);
    check_notification(&many[1], "e3", "b", 2, 3);
  }
  aether_event_stored_clear_batch(many, count);
  CHECK_STATUS(aether_poll_event_stored(s, 50, &n, NULL), AETHER_POLL_TIMEOUT);
  close_js(s);
}

/* Two handles on one stream (as two processes would be): each sees the other's saves,
 * conflicts included, and EventStored reports saves made through the other handle. */
static void test_two_handles(void) {
  char stream[64], e[512];
  aether_store *a = open_js_named(stream, sizeof(stream), 0);
  aether_store *b = open_js_named(stream, sizeof(stream), 1);
  aether_event_stored n = {0};
  int64_t current = -1;

  CHECK_OK(aether_save_event(a, STR(EV(e, "e1", "shared", 1)), NULL, NULL, NULL));
  CHECK_STATUS(aether_save_event(b, STR(EV(e, "x1", "shared", 1)), &current, NULL, NULL),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 1);
  CHECK_OK(aether_poll_event_stored(b, 5000, &n, NULL));
  check_notification(&n, "e1", "shared", 1, 1);
  aether_event_stored_clear(&n);
  CHECK_OK(aether_save_event(b, STR(EV(e, "e2", "shared", 2)), NULL, NULL, NULL));
  CHECK_OK(aether_get_latest_version(a, STR("shared"), &current, NULL));
  CHECK(current == 2);
  close_js(a);
  close_js(b);
}

/* Nobody listens: opening fails with AETHER_UNAVAILABLE or AETHER_TIMEOUT within the
 * connect timeout (plus slack for a loaded machine), and says why. */
static void test_server_down_at_open(void) {
  char url[64];
  aether_jetstream_options o;
  aether_store *marker = (aether_store *)&stream_counter; /* never dereferenced */
  aether_store *store = marker;
  aether_error *err = NULL;
  aether_status status;
  double started, elapsed;

  snprintf(url, sizeof(url), "nats://127.0.0.1:%d", free_port());
  aether_jetstream_options_default(&o);
  o.connect_timeout_ms = 1000;
  started = now_ms();
  status = aether_store_open_jetstream(url, &o, &store, &err);
  elapsed = now_ms() - started;
  CHECK(status == AETHER_UNAVAILABLE || status == AETHER_TIMEOUT);
  CHECK(aether_error_code(err) == status);
  CHECK(strstr(aether_error_message(err), "127.0.0.1") != NULL);
  if (elapsed > 3000.0) {
    fprintf(stderr, "opening took %.0f ms with a 1000 ms connect timeout\n", elapsed);
    CHECK(elapsed <= 3000.0);
  }
  CHECK(store == marker);
  aether_error_free(err);
}

int main(void) {
  const char *skip = getenv("AETHER_SKIP_JETSTREAM");
  if (!nats_server_on_path()) {
    if (skip != NULL && strcmp(skip, "1") == 0) {
      printf("SKIPPED: nats-server is not on PATH and AETHER_SKIP_JETSTREAM=1\n");
      return EXIT_SUCCESS;
    }
    fprintf(stderr, "nats-server is not on PATH: the JetStream tests need it (Debian: apt-get "
                    "install -y nats-server). Set AETHER_SKIP_JETSTREAM=1 to skip them.\n");
    return EXIT_FAILURE;
  }
  start_server();
  atexit(stop_server);
  run_test(test_options_default);
  run_test(test_bad_arguments);
  run_test(test_save_and_get);
  run_test(test_conflict);
  run_test(test_batch);
  run_test(test_read_all);
  run_test(test_snapshots);
  run_test(test_poll);
  run_test(test_two_handles);
  run_test(test_server_down_at_open);
  return harness_finish();
}
