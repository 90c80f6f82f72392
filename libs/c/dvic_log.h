/*
 * dvic_log.h: write DVIC demo logs from C or C++. Header-only, C99 / C++11, POSIX.
 *
 *     #include "dvic_log.h"
 *     dvic_log_open("led-wall");
 *     DVIC_INFO("frame %d drawn in %.1f ms", frame, ms);
 *
 * Records go to /tmp/dvic_log_<token> (or $DVIC_LOG_DIR) as one JSON line each, written with a
 * single write() on an O_APPEND descriptor, so threads and forked children never interleave.
 * Past its size cap the file is renamed dvic_log_<token>.<generation>, and the newest max_files
 * rotated files are kept. Format: docs/log-format.md. Link with -pthread when the program uses
 * threads.
 *
 * dvic_keepalive(url, status, message) sends an explicit heartbeat to the DVIC server (a keepalive
 * device, docs/devices.md) for demos that want one besides their logs.
 *
 * Include it before any system header (or build with -D_GNU_SOURCE): it needs O_CLOEXEC,
 * readlink and gethostname, which strict -std=c99 hides otherwise.
 */
#ifndef DVIC_LOG_H
#define DVIC_LOG_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DVIC_LOG_VERSION "0.2.0"
#define DVIC_LOG_PRIVATE 1 /* flag: create the file with mode 0600 */
#define DVIC_LOG_DEFAULT_MAX_BYTES (10L * 1024 * 1024)
#define DVIC_LOG_DEFAULT_MAX_FILES 4

#ifdef __cplusplus
#define DVIC_LOG_LANG "cpp"
#else
#define DVIC_LOG_LANG "c"
#endif

enum dvic_log_level { DVIC_LEVEL_TRACE, DVIC_LEVEL_DEBUG, DVIC_LEVEL_INFO, DVIC_LEVEL_WARN, DVIC_LEVEL_ERROR, DVIC_LEVEL_FATAL };

static const char *const dvic_log_level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* ---- growable string (keeps formatting free of fixed limits) ----------------------------- */

typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} dvic_log_buf;

static inline void dvic_log_buf_add(dvic_log_buf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = (char *)realloc(b->data, cap);
    if (!grown) { b->failed = 1; return; }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static inline void dvic_log_buf_str(dvic_log_buf *b, const char *s) { dvic_log_buf_add(b, s, strlen(s)); }

/* A JSON string: quotes, backslash and control characters escaped; everything else, UTF-8
 * included, copied as is (the same bytes as the Python and Node libraries). */
static inline void dvic_log_buf_json(dvic_log_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  dvic_log_buf_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
    switch (*p) {
      case '"': esc[1] = '"'; dvic_log_buf_add(b, esc, 2); break;
      case '\\': esc[1] = '\\'; dvic_log_buf_add(b, esc, 2); break;
      case '\b': esc[1] = 'b'; dvic_log_buf_add(b, esc, 2); break;
      case '\f': esc[1] = 'f'; dvic_log_buf_add(b, esc, 2); break;
      case '\n': esc[1] = 'n'; dvic_log_buf_add(b, esc, 2); break;
      case '\r': esc[1] = 'r'; dvic_log_buf_add(b, esc, 2); break;
      case '\t': esc[1] = 't'; dvic_log_buf_add(b, esc, 2); break;
      default:
        if (*p < 0x20) {
          esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = hex[*p >> 4]; esc[5] = hex[*p & 15];
          dvic_log_buf_add(b, esc, 6);
        } else {
          dvic_log_buf_add(b, (const char *)p, 1);
        }
    }
  }
  dvic_log_buf_add(b, "\"", 1);
}

static inline void dvic_log_buf_long(dvic_log_buf *b, long long v) {
  char n[32];
  snprintf(n, sizeof n, "%lld", v);
  dvic_log_buf_str(b, n);
}

/* ---- pure formatting (tested byte for byte against protocol/vectors/logs) ------------------ */

/* Appends a record line (no newline): {"ts":...,"level":...,"message":...}. */
static inline void dvic_log_format_record(dvic_log_buf *b, const char *ts, const char *level, const char *message) {
  dvic_log_buf_str(b, "{\"ts\":");
  dvic_log_buf_json(b, ts);
  dvic_log_buf_str(b, ",\"level\":");
  dvic_log_buf_json(b, level);
  dvic_log_buf_str(b, ",\"message\":");
  dvic_log_buf_json(b, message);
  dvic_log_buf_str(b, "}");
}

typedef struct {
  const char *token;
  long generation;
  long long records_before; /* < 0: left out */
  const char *demo;
  long pid;
  long long start_time; /* < 0: unknown, left out */
  const char *exe;
  const char *const *argv;
  int argc;
  const char *user;
  long uid;
  const char *hostname;
  const char *lang;
  const char *lib_version;
  const char *started_at;
} dvic_log_header;

/* Appends the header line (no newline), keys in the documented order. */
static inline void dvic_log_format_header(dvic_log_buf *b, const dvic_log_header *h) {
  dvic_log_buf_str(b, "{\"dvic_log\":1,\"token\":");
  dvic_log_buf_json(b, h->token);
  dvic_log_buf_str(b, ",\"generation\":");
  dvic_log_buf_long(b, h->generation);
  if (h->records_before >= 0) {
    dvic_log_buf_str(b, ",\"records_before\":");
    dvic_log_buf_long(b, h->records_before);
  }
  dvic_log_buf_str(b, ",\"demo\":");
  dvic_log_buf_json(b, h->demo);
  dvic_log_buf_str(b, ",\"pid\":");
  dvic_log_buf_long(b, h->pid);
  if (h->start_time >= 0) {
    dvic_log_buf_str(b, ",\"start_time\":");
    dvic_log_buf_long(b, h->start_time);
  }
  dvic_log_buf_str(b, ",\"exe\":");
  dvic_log_buf_json(b, h->exe);
  dvic_log_buf_str(b, ",\"argv\":[");
  for (int i = 0; i < h->argc; i++) {
    if (i) dvic_log_buf_str(b, ",");
    dvic_log_buf_json(b, h->argv[i]);
  }
  dvic_log_buf_str(b, "],\"user\":");
  dvic_log_buf_json(b, h->user);
  dvic_log_buf_str(b, ",\"uid\":");
  dvic_log_buf_long(b, h->uid);
  dvic_log_buf_str(b, ",\"hostname\":");
  dvic_log_buf_json(b, h->hostname);
  dvic_log_buf_str(b, ",\"lang\":");
  dvic_log_buf_json(b, h->lang);
  dvic_log_buf_str(b, ",\"lib_version\":");
  dvic_log_buf_json(b, h->lib_version);
  dvic_log_buf_str(b, ",\"started_at\":");
  dvic_log_buf_json(b, h->started_at);
  dvic_log_buf_str(b, "}");
}

/* RFC 3339 UTC with milliseconds ("2026-11-24T10:00:00.123Z"), into out[32]. */
static inline void dvic_log_now(char out[32]) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(tv.tv_usec / 1000) % 1000u);
}

/* ---- the process-wide logger ------------------------------------------------------------ */

/* The live file's generation and records_before, the records and bytes in it, and the oldest
 * rotated generation that may still be on disk (docs/log-format.md, Rotation). */
typedef struct {
  long long generation, records_before, records, size, first_kept;
} dvic_log_counters;

/* Once the process forks, it and its children share the counters and this lock (robust: a
 * process that dies holding it does not block the others), in memory they all map. */
typedef struct {
  pthread_mutex_t lock;
  dvic_log_counters counters;
} dvic_log_shared;

typedef struct {
  int fd;
  int mode;
  long max_bytes;
  int max_files;
  dvic_log_counters counts;
  long long fd_generation; /* the generation fd writes to */
  dvic_log_shared *shared;
  int at_fork;
  char path[4096];
  char token[32];
  char demo[256];
  char started_at[32];
  pthread_mutex_t lock;
} dvic_log_state;

static dvic_log_state dvic_log_global = {-1, 0644, DVIC_LOG_DEFAULT_MAX_BYTES, DVIC_LOG_DEFAULT_MAX_FILES, {0, 0, 0, 0, 0}, 0, NULL, 0,
                                         {0}, {0}, {0}, {0}, PTHREAD_MUTEX_INITIALIZER};

static inline int dvic_log_random_token(char out[32]) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char bytes[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, bytes, sizeof bytes);
  close(fd);
  if (got != (ssize_t)sizeof bytes) return -1;
  /* 128 random bits as 22 URL-safe base64 characters, like the other libraries */
  int o = 0;
  for (int i = 0; i < 16; i += 3) {
    unsigned v = (unsigned)bytes[i] << 16 | (i + 1 < 16 ? (unsigned)bytes[i + 1] << 8 : 0) | (i + 2 < 16 ? bytes[i + 2] : 0);
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (i + 1 < 16) out[o++] = alphabet[(v >> 6) & 63];
    if (i + 2 < 16) out[o++] = alphabet[v & 63];
  }
  out[o] = '\0';
  return 0;
}

static inline long long dvic_log_start_time(void) {
  char stat[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return -1;
  stat[n] = '\0';
  char *p = strrchr(stat, ')');
  if (!p) return -1;
  p += 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? atoll(p) : -1;
}

/* Reads /proc/self/cmdline into argv (pointers into buf). */
static inline int dvic_log_cmdline(char *buf, size_t cap, const char **argv, int max) {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  int argc = 0;
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  for (ssize_t i = 0; i < n && argc < max; i += (ssize_t)strlen(buf + i) + 1) argv[argc++] = buf + i;
  return argc;
}

static inline int dvic_log_create(dvic_log_state *s) {
  int fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, s->mode);
  if (fd < 0) return -1;
  fchmod(fd, (mode_t)s->mode);
  char exe[4096] = "", host[256] = "", cmd[8192];
  const char *argv[256];
  ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[exe_len > 0 ? exe_len : 0] = '\0';
  gethostname(host, sizeof host - 1);
  struct passwd *pw = getpwuid(getuid());
  dvic_log_header h;
  h.token = s->token; h.generation = (long)s->counts.generation; h.records_before = s->counts.records_before;
  h.demo = s->demo; h.pid = (long)getpid();
  h.start_time = dvic_log_start_time(); h.exe = exe;
  h.argc = dvic_log_cmdline(cmd, sizeof cmd, argv, 256); h.argv = argv;
  h.user = pw ? pw->pw_name : ""; h.uid = (long)getuid(); h.hostname = host; h.lang = DVIC_LOG_LANG;
  h.lib_version = DVIC_LOG_VERSION; h.started_at = s->started_at;
  dvic_log_buf b = {NULL, 0, 0, 0};
  dvic_log_format_header(&b, &h);
  dvic_log_buf_add(&b, "\n", 1);
  ssize_t written = b.failed ? -1 : write(fd, b.data, b.len);
  free(b.data);
  if (written < 0) {
    close(fd);
    return -1;
  }
  s->counts.size = written;
  s->fd_generation = s->counts.generation;
  return fd;
}

/* Rotated files to keep when the program does not say: $DVIC_LOG_MAX_FILES, else 4. */
static inline int dvic_log_env_max_files(void) {
  const char *value = getenv("DVIC_LOG_MAX_FILES");
  long n = 0;
  if (!value || !*value) return DVIC_LOG_DEFAULT_MAX_FILES;
  for (const char *p = value; *p; p++) {
    if (*p < '0' || *p > '9') return DVIC_LOG_DEFAULT_MAX_FILES;
    if (n < 100000000L) n = n * 10 + (*p - '0');
  }
  return (int)n;
}

/* Before a fork: the counters move to memory the child will share (if that fails, each process
 * keeps counting its own records). */
static inline void dvic_log_share(dvic_log_state *s) {
  void *memory = mmap(NULL, sizeof(dvic_log_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return;
  dvic_log_shared *shared = (dvic_log_shared *)memory;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int failed = pthread_mutex_init(&shared->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  if (failed) {
    munmap(memory, sizeof *shared);
    return;
  }
  shared->counters = s->counts;
  s->shared = shared;
}

static inline void dvic_log_unshare(dvic_log_state *s) {
  if (s->shared) munmap(s->shared, sizeof *s->shared);
  s->shared = NULL;
}

/* A fork holds the lock (the child never inherits it held by another thread) and shares the log. */
static inline void dvic_log_before_fork(void) {
  pthread_mutex_lock(&dvic_log_global.lock);
  if (dvic_log_global.fd >= 0 && !dvic_log_global.shared) dvic_log_share(&dvic_log_global);
}

static inline void dvic_log_after_fork(void) { pthread_mutex_unlock(&dvic_log_global.lock); }

/* The process that opened the log: a forked child's exit does not end the demo's run. */
static pid_t dvic_log_owner = 0;
static int dvic_log_at_exit = 0;
static inline void dvic_log_on_exit(void);

/* Opens a demo log with options: flags (DVIC_LOG_PRIVATE), rotation size (0: default 10 MiB)
 * and rotated files kept (< 0: $DVIC_LOG_MAX_FILES, else 4). */
static inline int dvic_log_open_rotate(const char *demo, int flags, long max_bytes, int max_files) {
  dvic_log_state *s = &dvic_log_global;
  const char *dir = getenv("DVIC_LOG_DIR");
  pthread_mutex_lock(&s->lock);
  if (!s->at_fork) s->at_fork = pthread_atfork(dvic_log_before_fork, dvic_log_after_fork, dvic_log_after_fork) == 0;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  dvic_log_unshare(s);
  s->mode = (flags & DVIC_LOG_PRIVATE) ? 0600 : 0644;
  s->max_bytes = max_bytes > 0 ? max_bytes : DVIC_LOG_DEFAULT_MAX_BYTES;
  s->max_files = max_files >= 0 ? max_files : dvic_log_env_max_files();
  memset(&s->counts, 0, sizeof s->counts);
  snprintf(s->demo, sizeof s->demo, "%s", demo);
  dvic_log_now(s->started_at);
  if (dvic_log_random_token(s->token) == 0) {
    snprintf(s->path, sizeof s->path, "%s/dvic_log_%s", dir && *dir ? dir : "/tmp", s->token);
    s->fd = dvic_log_create(s);
  }
  int result = s->fd >= 0 ? 0 : -1;
  dvic_log_owner = getpid();
  pthread_mutex_unlock(&s->lock);
  if (result == 0 && !dvic_log_at_exit) dvic_log_at_exit = atexit(dvic_log_on_exit) == 0;
  return result;
}

/* Opens a demo log with options: flags (DVIC_LOG_PRIVATE) and rotation size (0: default). */
static inline int dvic_log_open_ex(const char *demo, int flags, long max_bytes) { return dvic_log_open_rotate(demo, flags, max_bytes, -1); }

static inline int dvic_log_open(const char *demo) { return dvic_log_open_ex(demo, 0, 0); }

/* Deletes the rotated files up to generation `newest`; the agent may have deleted them already. */
static inline void dvic_log_delete_expired(dvic_log_state *s, long long newest) {
  char name[4128];
  for (; s->counts.first_kept <= newest; s->counts.first_kept++) {
    snprintf(name, sizeof name, "%s.%lld", s->path, s->counts.first_kept);
    if (unlink(name) != 0 && errno != ENOENT) return; /* tried again after the next rotation */
  }
}

/* The live file becomes .<generation>; the agent finishes it from its open descriptor. */
static inline void dvic_log_rotate(dvic_log_state *s) {
  char name[4128];
  long long rotated = s->counts.generation;
  snprintf(name, sizeof name, "%s.%lld", s->path, rotated);
  if (rename(s->path, name) != 0) return;
  int old = s->fd;
  s->counts.generation = rotated + 1;
  s->counts.records_before += s->counts.records;
  s->counts.records = 0;
  s->fd = dvic_log_create(s);
  close(old);
  dvic_log_delete_expired(s, rotated - s->max_files);
}

static inline void dvic_log_append(dvic_log_state *s, const char *line, size_t len) {
  if (s->fd_generation != s->counts.generation) { /* another process rotated the file */
    int fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    close(s->fd);
    s->fd = fd;
    s->fd_generation = s->counts.generation;
  }
  if (write(s->fd, line, len) <= 0) return;
  s->counts.records++;
  s->counts.size += (long long)len;
  if (s->counts.size > s->max_bytes) dvic_log_rotate(s);
}

static inline void dvic_log_write(int level, const char *message) {
  dvic_log_state *s = &dvic_log_global;
  char ts[32];
  dvic_log_now(ts);
  dvic_log_buf b = {NULL, 0, 0, 0};
  dvic_log_format_record(&b, ts, dvic_log_level_names[level], message);
  dvic_log_buf_add(&b, "\n", 1);
  pthread_mutex_lock(&s->lock);
  if (s->fd >= 0 && !b.failed && s->shared) {
    if (pthread_mutex_lock(&s->shared->lock) == EOWNERDEAD) pthread_mutex_consistent(&s->shared->lock);
    s->counts = s->shared->counters;
    dvic_log_append(s, b.data, b.len);
    s->shared->counters = s->counts;
    pthread_mutex_unlock(&s->shared->lock);
  } else if (s->fd >= 0 && !b.failed) {
    dvic_log_append(s, b.data, b.len);
  }
  pthread_mutex_unlock(&s->lock);
  free(b.data);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline void dvic_log_printf(int level, const char *format, ...) {
  char small[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(small, sizeof small, format, args);
  va_end(args);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    dvic_log_write(level, small);
    return;
  }
  char *large = (char *)malloc((size_t)n + 1);
  if (!large) return;
  va_start(args, format);
  vsnprintf(large, (size_t)n + 1, format, args);
  va_end(args);
  dvic_log_write(level, large);
  free(large);
}

static inline const char *dvic_log_path(void) { return dvic_log_global.path; }

/* Ends the log with its closing record (docs/log-format.md, "Closing record"): ended is "exited"
 * (exit_code >= 0 when known, else -1) or "killed" (call it from your SIGTERM path). The server
 * then tells a clean stop from a crash. */
static inline void dvic_log_end(const char *ended, int exit_code) {
  dvic_log_state *s = &dvic_log_global;
  pthread_mutex_lock(&s->lock);
  if (s->fd >= 0 && dvic_log_owner == getpid()) {
    char ts[32];
    dvic_log_now(ts);
    dvic_log_buf b = {NULL, 0, 0, 0};
    dvic_log_buf_str(&b, "{\"ts\":");
    dvic_log_buf_json(&b, ts);
    dvic_log_buf_str(&b, ",\"level\":\"INFO\",\"message\":");
    char message[64];
    snprintf(message, sizeof message, "demo %s", ended);
    dvic_log_buf_json(&b, message);
    dvic_log_buf_str(&b, ",\"fields\":{\"dvic_end\":");
    dvic_log_buf_json(&b, ended);
    if (exit_code >= 0) {
      dvic_log_buf_str(&b, ",\"exit_code\":");
      dvic_log_buf_long(&b, exit_code);
    }
    dvic_log_buf_str(&b, "}}\n");
    if (!b.failed && write(s->fd, b.data, b.len) < 0) { /* a full disk: the demo is then seen as vanished */ }
    free(b.data);
  }
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  dvic_log_unshare(s);
  pthread_mutex_unlock(&s->lock);
}

static inline void dvic_log_close(void) { dvic_log_end("exited", -1); }

/* A normal exit (return from main, exit()) writes the closing record. */
static inline void dvic_log_on_exit(void) { dvic_log_close(); }

#define DVIC_TRACE(...) dvic_log_printf(DVIC_LEVEL_TRACE, __VA_ARGS__)
#define DVIC_DEBUG(...) dvic_log_printf(DVIC_LEVEL_DEBUG, __VA_ARGS__)
#define DVIC_INFO(...) dvic_log_printf(DVIC_LEVEL_INFO, __VA_ARGS__)
#define DVIC_WARN(...) dvic_log_printf(DVIC_LEVEL_WARN, __VA_ARGS__)
#define DVIC_ERROR(...) dvic_log_printf(DVIC_LEVEL_ERROR, __VA_ARGS__)
#define DVIC_FATAL(...) dvic_log_printf(DVIC_LEVEL_FATAL, __VA_ARGS__)

/* ---- keepalive: an explicit heartbeat (a keepalive device, docs/devices.md) --------------- */

/* Splits http://host[:port]/path; 0 on success. */
static inline int dvic_keepalive_split(const char *url, char *host, size_t host_cap, char *port, size_t port_cap, const char **path) {
  const char *start, *slash, *colon;
  size_t len;
  if (strncmp(url, "http://", 7) != 0) return -1; /* https: use curl or the agent's relay */
  start = url + 7;
  slash = strchr(start, '/');
  if (!slash) return -1;
  colon = (const char *)memchr(start, ':', (size_t)(slash - start));
  len = (size_t)((colon ? colon : slash) - start);
  if (len == 0 || len >= host_cap) return -1;
  memcpy(host, start, len);
  host[len] = 0;
  if (colon) {
    len = (size_t)(slash - colon - 1);
    if (len == 0 || len >= port_cap) return -1;
    memcpy(port, colon + 1, len);
    port[len] = 0;
  } else {
    snprintf(port, port_cap, "80");
  }
  *path = slash;
  return 0;
}

/*
 * POSTs {"status", "message"} to a device's keepalive URL (http://server/api/v1/devices/<token>/keepalive;
 * NULL: $DVIC_KEEPALIVE_URL). status NULL is "ok"; "fail" shows the device down at once. Waits at
 * most 5 s. Returns the HTTP status (204 when received, 404 for an unknown token) or -1 when the
 * server could not be reached (or the URL is not http://).
 */
static inline int dvic_keepalive(const char *url, const char *status, const char *message) {
  char host[256], port[16], answer[64];
  const char *path;
  struct addrinfo hints, *res = NULL;
  struct timeval timeout = {5, 0};
  dvic_log_buf body = {NULL, 0, 0, 0}, request = {NULL, 0, 0, 0};
  int fd, code = -1;
  ssize_t got;
  if (!url) url = getenv("DVIC_KEEPALIVE_URL");
  if (!url || dvic_keepalive_split(url, host, sizeof host, port, sizeof port, &path) != 0) return -1;
  dvic_log_buf_str(&body, "{\"status\":");
  dvic_log_buf_json(&body, status ? status : "ok");
  if (message) {
    dvic_log_buf_str(&body, ",\"message\":");
    dvic_log_buf_json(&body, message);
  }
  dvic_log_buf_str(&body, "}");
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (!body.data || getaddrinfo(host, port, &hints, &res) != 0) {
    free(body.data);
    return -1;
  }
  fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    char head[512];
    snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\nContent-Length: %lu\r\nConnection: close\r\n\r\n",
             path, host, port, (unsigned long)body.len);
    dvic_log_buf_str(&request, head);
    dvic_log_buf_add(&request, body.data, body.len);
    if (request.data && write(fd, request.data, request.len) == (ssize_t)request.len) {
      memset(answer, 0, sizeof answer);
      got = read(fd, answer, sizeof answer - 1);
      if (got > 12 && sscanf(answer, "HTTP/1.%*d %d", &code) != 1) code = -1;
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  free(body.data);
  free(request.data);
  return code;
}

#ifdef __cplusplus
}
#endif

#endif /* DVIC_LOG_H */
