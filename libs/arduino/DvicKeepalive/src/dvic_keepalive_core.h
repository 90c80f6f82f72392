// The portable core of DvicKeepalive: message building, log buffering, backoff and retry.
// No Arduino dependency (tested with g++ on Linux); the board glue is DvicKeepalive.h.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace dvicka {

enum Level : uint8_t { TRACE, DEBUG, INFO, WARN, ERROR, FATAL };
inline const char *levelName(Level l) {
  static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
  return names[l <= FATAL ? l : INFO];
}

/** What the server accepts per keepalive (protocol/schemas/api/device-keepalive.json). */
const size_t MAX_LOGS = 20;
const size_t MAX_NUMBERS = 16;        // the server takes 50; a board rarely needs more
const size_t MAX_LOG_CHARS = 120;     // per line kept on the device (the server takes 1024)
const size_t MAX_BODY = 10 * 1024;    // the server answers 413 beyond this
const size_t MAX_NAME = 32;

/** Writes JSON text into a fixed buffer; overflow is remembered, never written past the end. */
class JsonOut {
 public:
  JsonOut(char *buf, size_t cap) : buf_(buf), cap_(cap) { if (cap_) buf_[0] = 0; }
  void raw(const char *s) { while (*s) put(*s++); }
  void str(const char *s) {
    put('"');
    for (; *s; s++) {
      unsigned char c = (unsigned char)*s;
      if (c == '"' || c == '\\') { put('\\'); put((char)c); }
      else if (c == '\n') raw("\\n");
      else if (c == '\r') raw("\\r");
      else if (c == '\t') raw("\\t");
      else if (c < 0x20) { char u[8]; snprintf(u, sizeof u, "\\u%04x", c); raw(u); }
      else put((char)c);
    }
    put('"');
  }
  void number(double v) {
    char n[32];
    if (v != v || v > 1e300 || v < -1e300) v = 0;  // NaN and infinities are not JSON numbers
    if (v == (double)(long long)v && v < 9e15 && v > -9e15) snprintf(n, sizeof n, "%lld", (long long)v);
    else snprintf(n, sizeof n, "%.6g", v);
    raw(n);
  }
  void key(const char *k) { if (!first_) put(','); first_ = false; str(k); put(':'); }
  void open(char c) { put(c); first_ = true; }
  void close(char c) { put(c); first_ = false; }
  bool ok() const { return !overflow_; }
  size_t length() const { return len_; }

 private:
  void put(char c) {
    if (len_ + 1 >= cap_) { overflow_ = true; return; }
    buf_[len_++] = c;
    buf_[len_] = 0;
  }
  char *buf_;
  size_t cap_;
  size_t len_ = 0;
  bool first_ = true;
  bool overflow_ = false;
};

/** Host and port of an http:// or https:// URL (for a TLS connection checked before sending). */
inline bool splitUrl(const char *url, char *host, size_t hostCap, uint16_t *port) {
  bool tls = strncmp(url, "https://", 8) == 0;
  if (!tls && strncmp(url, "http://", 7) != 0) return false;
  const char *start = url + (tls ? 8 : 7);
  size_t len = strcspn(start, ":/");
  if (len == 0 || len >= hostCap) return false;
  memcpy(host, start, len);
  host[len] = 0;
  *port = tls ? 443 : 80;
  if (start[len] == ':') {
    long p = strtol(start + len + 1, nullptr, 10);
    if (p <= 0 || p > 65535) return false;
    *port = (uint16_t)p;
  }
  return true;
}

/** Exponential backoff with jitter: base, 2x base, ... up to max; reset on success. */
class Backoff {
 public:
  Backoff(uint32_t baseMs, uint32_t maxMs) : base_(baseMs), max_(maxMs) {}
  /** The wait before the next attempt (and counts this failure). `random` spreads a lab of boards. */
  uint32_t next(uint32_t random) {
    uint32_t d = base_;
    for (uint8_t i = 0; i < attempts_ && d < max_; i++) d *= 2;
    if (d > max_) d = max_;
    if (attempts_ < 30) attempts_++;
    return d / 2 + (d ? random % (d / 2 + 1) : 0);
  }
  void reset() { attempts_ = 0; }
  uint8_t attempts() const { return attempts_; }

 private:
  uint32_t base_, max_;
  uint8_t attempts_ = 0;
};

/** How a keepalive went, from its HTTP status (negative: no answer). */
enum class Outcome { Sent, Rejected, Retry };
inline Outcome outcomeOf(int httpStatus) {
  if (httpStatus >= 200 && httpStatus < 300) return Outcome::Sent;
  // 400 (a bad body), 404 (unknown token), 413 (too big): sending the same again cannot help.
  if (httpStatus == 400 || httpStatus == 401 || httpStatus == 404 || httpStatus == 413) return Outcome::Rejected;
  return Outcome::Retry;
}

/** Sends the body to the keepalive URL: the HTTP status, or negative when there was no answer. */
class Transport {
 public:
  virtual ~Transport() {}
  virtual int post(const char *url, const char *body, size_t length) = 0;
};

/**
 * The keepalive schedule and message: logs buffered (oldest dropped beyond MAX_LOGS, counted)
 * and sent with the next keepalive; a failed send is retried with backoff, keeping the logs.
 */
class KeepaliveCore {
 public:
  KeepaliveCore(const char *server, const char *token) : backoff_(2000, 300000) {
    snprintf(url_, sizeof url_, "%s/api/v1/devices/%s/keepalive", server, token);
    size_t n = strlen(server);
    if (n && server[n - 1] == '/') snprintf(url_, sizeof url_, "%.*s/api/v1/devices/%s/keepalive", (int)(n - 1), server, token);
  }

  void setPeriod(uint32_t seconds) { periodMs_ = (seconds ? seconds : 1) * 1000UL; }
  uint32_t periodMs() const { return periodMs_; }
  const char *url() const { return url_; }
  bool httpsUrl() const { return strncmp(url_, "https://", 8) == 0; }

  void setStatus(const char *status, const char *message = nullptr) {
    copy(status_, status ? status : "ok", sizeof status_);
    copy(message_, message ? message : "", sizeof message_);
  }
  void setFirmware(const char *v) { copy(firmware_, v ? v : "", sizeof firmware_); }
  void setDemo(const char *v) { copy(demo_, v ? v : "", sizeof demo_); }

  /** A numeric field sent with every keepalive (its latest value); false when the table is full. */
  bool setNumber(const char *name, double value) {
    for (size_t i = 0; i < numberCount_; i++) if (strcmp(numbers_[i].name, name) == 0) { numbers_[i].value = value; return true; }
    if (numberCount_ == MAX_NUMBERS) return false;
    copy(numbers_[numberCount_].name, name, MAX_NAME);
    numbers_[numberCount_++].value = value;
    return true;
  }

  /** A log line for the next keepalive; beyond MAX_LOGS the oldest is dropped (and counted). */
  void log(Level level, const char *message, uint32_t atMs) {
    if (logCount_ == MAX_LOGS) {
      memmove(&logs_[0], &logs_[1], sizeof(LogLine) * (MAX_LOGS - 1));
      logCount_--;
      droppedLogs_++;
    }
    LogLine &l = logs_[logCount_++];
    l.level = level;
    l.atMs = atMs;
    copy(l.message, message, sizeof l.message);
  }
  size_t pendingLogs() const { return logCount_; }
  uint32_t droppedLogs() const { return droppedLogs_; }

  /** The JSON body; 0 when it does not fit (never with the caps above and a 10 kB buffer). */
  size_t buildBody(char *out, size_t cap, uint32_t uptimeS, int rssi, uint32_t freeHeap) const {
    JsonOut j(out, cap);
    j.open('{');
    j.key("status"); j.str(status_);
    if (message_[0]) { j.key("message"); j.str(message_); }
    j.key("uptime_s"); j.number(uptimeS);
    if (rssi != 0) { j.key("rssi"); j.number(rssi); }
    if (freeHeap) { j.key("free_heap"); j.number(freeHeap); }
    if (firmware_[0]) { j.key("firmware"); j.str(firmware_); }
    if (demo_[0]) { j.key("demo"); j.str(demo_); }
    if (numberCount_ || droppedLogs_) {
      j.key("numbers"); j.open('{');
      for (size_t i = 0; i < numberCount_; i++) { j.key(numbers_[i].name); j.number(numbers_[i].value); }
      if (droppedLogs_) { j.key("dropped_logs"); j.number(droppedLogs_); }
      j.close('}');
    }
    if (logCount_) {
      j.key("logs"); j.open('[');
      for (size_t i = 0; i < logCount_; i++) {
        if (i) j.raw(",");
        j.open('{');
        j.key("level"); j.str(levelName(logs_[i].level));
        j.key("message"); j.str(logs_[i].message);
        j.key("at"); j.number(logs_[i].atMs);
        j.close('}');
      }
      j.close(']');
    }
    j.close('}');
    return j.ok() ? j.length() : 0;
  }

  /** True when a keepalive should go now (first one at once, then every period, or the retry time). */
  bool due(uint32_t nowMs) const { return !started_ || (int32_t)(nowMs - nextMs_) >= 0; }
  uint32_t nextMs() const { return nextMs_; }

  /** Records how a send went and schedules the next one. */
  Outcome sent(uint32_t nowMs, int httpStatus, uint32_t random = 0) {
    started_ = true;
    Outcome o = outcomeOf(httpStatus);
    lastStatus_ = httpStatus;
    if (o == Outcome::Retry) {
      nextMs_ = nowMs + backoff_.next(random);
      return o;
    }
    // Sent, or refused for good: these logs are done either way (a refused body would be refused again).
    logCount_ = 0;
    droppedLogs_ = 0;
    backoff_.reset();
    nextMs_ = nowMs + periodMs_;
    return o;
  }

  /** Builds and sends a keepalive if one is due; the HTTP status, or 0 when none was due. */
  int tick(uint32_t nowMs, Transport &transport, uint32_t uptimeS, int rssi, uint32_t freeHeap, uint32_t random = 0) {
    if (!due(nowMs)) return 0;
    static char body[MAX_BODY];
    size_t n = buildBody(body, sizeof body, uptimeS, rssi, freeHeap);
    int status = n ? transport.post(url_, body, n) : 413;
    sent(nowMs, status, random);
    return status;
  }

  int lastStatus() const { return lastStatus_; }
  uint8_t failures() const { return backoff_.attempts(); }

 private:
  struct LogLine { Level level; uint32_t atMs; char message[MAX_LOG_CHARS + 1]; };
  struct Number { char name[MAX_NAME + 1]; double value; };
  static void copy(char *to, const char *from, size_t cap) {
    size_t n = strlen(from);
    if (n >= cap) n = cap - 1;
    memcpy(to, from, n);
    to[n] = 0;
  }

  char url_[256];
  char status_[24] = "ok";
  char message_[128] = "";
  char firmware_[48] = "";
  char demo_[48] = "";
  Number numbers_[MAX_NUMBERS];
  size_t numberCount_ = 0;
  LogLine logs_[MAX_LOGS];
  size_t logCount_ = 0;
  uint32_t droppedLogs_ = 0;
  uint32_t periodMs_ = 60000;
  uint32_t nextMs_ = 0;
  bool started_ = false;
  int lastStatus_ = 0;
  Backoff backoff_;
};

}  // namespace dvicka
