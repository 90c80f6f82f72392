// DvicKeepalive: keepalives from an ESP32 (or ESP8266) demo to a DVIC Demo Monitor server.
// The board glue (WiFi, HTTP(S), heap, deep sleep) around the portable core in
// dvic_keepalive_core.h. See README.md.
#pragma once
#include <Arduino.h>
#include "dvic_keepalive_core.h"

#if defined(ESP8266)
#include <ESP8266WiFi.h>
#include <ESP8266HTTPClient.h>
#include <WiFiClientSecureBearSSL.h>
#else
#include <WiFi.h>
#include <HTTPClient.h>
#include <WiFiClientSecure.h>
#include <esp_sleep.h>
#endif

class DvicKeepalive : private dvicka::Transport {
 public:
  DvicKeepalive(const char *server, const char *token) : core_(server, token), wifiBackoff_(1000, 60000) {}

  /** Levels for log(): dvic.log(dvic.WARN, "...") or DvicKeepalive::WARN. */
  static const dvicka::Level TRACE = dvicka::TRACE, DEBUG = dvicka::DEBUG, INFO = dvicka::INFO, WARN = dvicka::WARN, ERROR = dvicka::ERROR, FATAL = dvicka::FATAL;

  /** Starts WiFi (reconnected with backoff by loop()). */
  void begin(const char *ssid, const char *password) {
    ssid_ = ssid;
    password_ = password;
    WiFi.mode(WIFI_STA);
    WiFi.begin(ssid_, password_);
    wifiRetryAt_ = millis() + 10000;
  }

  void setPeriod(uint32_t seconds) { core_.setPeriod(seconds); }
  /** HTTPS: trust this CA certificate (PEM). Mind the heap: a TLS session takes ~40-70 kB. */
  void setCACert(const char *pem) { caCert_ = pem; }
  /** HTTPS: accept only the server certificate with this SHA-1 fingerprint ("AA BB ..." or "AA:BB:..."). */
  void setFingerprint(const char *sha1) { fingerprint_ = sha1; }
  void setStatus(const char *status, const char *message = nullptr) { core_.setStatus(status, message); }
  void setFirmware(const char *version) { core_.setFirmware(version); }
  void setDemo(const char *name) { core_.setDemo(name); }
  bool setNumber(const char *name, double value) { return core_.setNumber(name, value); }

  /** A log line, sent with the next keepalive. */
  void log(dvicka::Level level, const char *message) { core_.log(level, message, millis()); }
  void info(const char *message) { log(dvicka::INFO, message); }
  void warn(const char *message) { log(dvicka::WARN, message); }
  void error(const char *message) { log(dvicka::ERROR, message); }

  /** Call often from loop(): keeps WiFi up and sends a keepalive when one is due. The HTTP status, 0 if none was sent. */
  int loop() {
    uint32_t now = millis();
    if (WiFi.status() != WL_CONNECTED) {
      if ((int32_t)(now - wifiRetryAt_) >= 0) {
        WiFi.disconnect();
        WiFi.begin(ssid_, password_);
        wifiRetryAt_ = now + wifiBackoff_.next(random32());
      }
      return 0;
    }
    wifiBackoff_.reset();
    return core_.tick(now, *this, now / 1000, WiFi.RSSI(), ESP.getFreeHeap(), random32());
  }

  /** Connects (waiting up to timeoutMs) and sends one keepalive now: for a board about to sleep. */
  int sendNow(uint32_t timeoutMs = 15000) {
    uint32_t start = millis();
    while (WiFi.status() != WL_CONNECTED && millis() - start < timeoutMs) delay(100);
    if (WiFi.status() != WL_CONNECTED) return -1;
    char body[dvicka::MAX_BODY];
    size_t n = core_.buildBody(body, sizeof body, millis() / 1000, WiFi.RSSI(), ESP.getFreeHeap());
    int status = post(core_.url(), body, n);
    core_.sent(millis(), status);
    return status;
  }

#if !defined(ESP8266)
  /** Sends a keepalive, then deep-sleeps; the board restarts from setup() after `seconds`. */
  void sendAndSleep(uint32_t seconds) {
    sendNow();
    WiFi.disconnect(true);
    esp_sleep_enable_timer_wakeup((uint64_t)seconds * 1000000ULL);
    esp_deep_sleep_start();
  }
#endif

  int lastStatus() const { return core_.lastStatus(); }
  const char *url() const { return core_.url(); }

 private:
  int post(const char *url, const char *body, size_t length) override {
    HTTPClient http;
    http.setTimeout(5000);
    bool started;
    if (core_.httpsUrl()) {
      WiFiClientSecure tls;
#if defined(ESP8266)
      if (fingerprint_) tls.setFingerprint(fingerprint_);
      else if (!caCert_) tls.setInsecure();
#else
      if (caCert_) {
        tls.setCACert(caCert_);
      } else if (fingerprint_) {
        // Pinned: connect and check the certificate before anything is sent (HTTPClient reuses
        // this connection).
        tls.setInsecure();
        char host[128];
        uint16_t port;
        if (!dvicka::splitUrl(url, host, sizeof host, &port) || !tls.connect(host, port)) return -1;
        if (!tls.verify(fingerprint_, nullptr)) {
          tls.stop();
          return -2;
        }
      } else {
        tls.setInsecure();
      }
#endif
      started = http.begin(tls, url);
      if (!started) return -1;
      return send(http, body, length);
    }
    WiFiClient plain;
    started = http.begin(plain, url);
    if (!started) return -1;
    return send(http, body, length);
  }

  static int send(HTTPClient &http, const char *body, size_t length) {
    http.addHeader("Content-Type", "application/json");
    int status = http.POST((uint8_t *)body, length);
    http.end();
    return status;
  }

  static uint32_t random32() { return (uint32_t)random(0x7fffffff); }

  dvicka::KeepaliveCore core_;
  dvicka::Backoff wifiBackoff_;
  const char *ssid_ = nullptr;
  const char *password_ = nullptr;
  const char *caCert_ = nullptr;
  const char *fingerprint_ = nullptr;
  uint32_t wifiRetryAt_ = 0;
};
