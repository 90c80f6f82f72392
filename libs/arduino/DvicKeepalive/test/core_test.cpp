// The portable core, compiled with g++ on Linux: message building, log buffering, backoff, retry.
#include <stdio.h>
#include <string>
#include "../src/dvic_keepalive_core.h"

static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

struct FakeTransport : dvicka::Transport {
  int answer = 204;
  int calls = 0;
  std::string url, body;
  int post(const char *u, const char *b, size_t n) override { calls++; url = u; body.assign(b, n); return answer; }
};

static void url_and_body() {
  dvicka::KeepaliveCore core("http://lab:8787/", "dvk_abc");
  CHECK(std::string(core.url()) == "http://lab:8787/api/v1/devices/dvk_abc/keepalive");
  CHECK(!core.httpsUrl());
  core.setFirmware("1.0");
  core.setNumber("temp_c", 21.5);
  core.setNumber("count", 3);
  core.setNumber("temp_c", 22.25);
  core.log(dvicka::WARN, "quote \" backslash \\ newline \n tab \t bell \x07", 1234);
  char body[2048];
  size_t n = core.buildBody(body, sizeof body, 42, -61, 180000);
  CHECK(n == strlen(body));
  CHECK(std::string(body) == "{\"status\":\"ok\",\"uptime_s\":42,\"rssi\":-61,\"free_heap\":180000,\"firmware\":\"1.0\","
                             "\"numbers\":{\"temp_c\":22.25,\"count\":3},\"logs\":[{\"level\":\"WARN\","
                             "\"message\":\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007\",\"at\":1234}]}");
  char tiny[16];
  CHECK(core.buildBody(tiny, sizeof tiny, 1, 0, 0) == 0);  // does not fit: nothing half-written is sent
}

static void logs_buffered_and_sent_once() {
  dvicka::KeepaliveCore core("http://s", "t");
  for (int i = 0; i < 25; i++) { char m[16]; snprintf(m, sizeof m, "line %d", i); core.log(dvicka::INFO, m, i); }
  CHECK(core.pendingLogs() == dvicka::MAX_LOGS);
  CHECK(core.droppedLogs() == 5);
  FakeTransport t;
  CHECK(core.tick(0, t, 0, 0, 0) == 204);
  CHECK(t.body.find("\"line 4\"") == std::string::npos);  // the oldest were dropped
  CHECK(t.body.find("\"line 5\"") != std::string::npos && t.body.find("\"line 24\"") != std::string::npos);
  CHECK(t.body.find("\"dropped_logs\":5") != std::string::npos);
  CHECK(core.pendingLogs() == 0);
}

static void schedule_retry_and_backoff() {
  dvicka::KeepaliveCore core("http://s", "t");
  core.setPeriod(60);
  FakeTransport t;
  CHECK(core.due(0));
  t.answer = -1;  // no answer: retried with backoff, logs kept
  core.log(dvicka::ERROR, "kept", 0);
  CHECK(core.tick(1000, t, 1, 0, 0) == -1);
  CHECK(core.pendingLogs() == 1);
  uint32_t first = core.nextMs() - 1000;
  CHECK(first >= 1000 && first <= 2000);  // base 2 s, jitter in its upper half
  CHECK(!core.due(1000 + first - 1));
  uint32_t now = core.nextMs();
  t.answer = 503;
  core.tick(now, t, 1, 0, 0);
  uint32_t second = core.nextMs() - now;
  CHECK(second >= 2000 && second <= 4000);
  for (int i = 0; i < 20; i++) { now = core.nextMs(); core.tick(now, t, 1, 0, 0); }
  CHECK(core.nextMs() - now <= 300000);  // capped at 5 minutes
  t.answer = 204;
  now = core.nextMs();
  CHECK(core.tick(now, t, 1, 0, 0) == 204);
  CHECK(core.pendingLogs() == 0 && core.failures() == 0);
  CHECK(core.nextMs() == now + 60000);
  CHECK(core.tick(now + 59999, t, 1, 0, 0) == 0);  // not due yet
  int calls = t.calls;
  t.answer = 404;  // unknown token: not retried sooner, logs given up
  core.log(dvicka::INFO, "x", 0);
  CHECK(core.tick(now + 60000, t, 1, 0, 0) == 404);
  CHECK(t.calls == calls + 1 && core.pendingLogs() == 0 && core.nextMs() == now + 120000);
  // millis() wraps after 49 days: due() still works across the wrap.
  dvicka::KeepaliveCore wrap("http://s", "t");
  wrap.setPeriod(10);
  t.answer = 204;
  wrap.tick(0xFFFFF000u, t, 1, 0, 0);
  CHECK(!wrap.due(0xFFFFFFFFu) && wrap.due(0xFFFFF000u + 10000));
}

static void status_and_numbers() {
  dvicka::KeepaliveCore core("https://s", "t");
  CHECK(core.httpsUrl());
  core.setStatus("fail", "sensor lost");
  for (int i = 0; i < 20; i++) { char k[8]; snprintf(k, sizeof k, "n%d", i); core.setNumber(k, i); }
  CHECK(!core.setNumber("one_more", 1));
  char body[4096];
  core.buildBody(body, sizeof body, 0, 0, 0);
  CHECK(std::string(body).find("\"status\":\"fail\",\"message\":\"sensor lost\"") != std::string::npos);
  CHECK(std::string(body).find("\"n15\":15") != std::string::npos && std::string(body).find("\"n16\"") == std::string::npos);
}

static void urls() {
  char host[64];
  uint16_t port = 0;
  CHECK(dvicka::splitUrl("https://dvic.lab/api/v1/devices/t/keepalive", host, sizeof host, &port) && std::string(host) == "dvic.lab" && port == 443);
  CHECK(dvicka::splitUrl("http://10.0.0.2:8787/x", host, sizeof host, &port) && std::string(host) == "10.0.0.2" && port == 8787);
  CHECK(!dvicka::splitUrl("ftp://x/", host, sizeof host, &port));
  CHECK(!dvicka::splitUrl("http://h:99999/", host, sizeof host, &port));
  char tiny[4];
  CHECK(!dvicka::splitUrl("http://long-host/", tiny, sizeof tiny, &port));
}

int main() {
  urls();
  url_and_body();
  logs_buffered_and_sent_once();
  schedule_retry_and_backoff();
  status_and_numbers();
  if (failures) return 1;
  puts("core tests passed");
  return 0;
}
