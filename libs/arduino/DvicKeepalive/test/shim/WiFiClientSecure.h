#pragma once
#include <stdint.h>
#include "WiFiClient.h"
/** Shim: TLS is not exercised on Linux (an https URL fails to connect here: -1). */
class WiFiClientSecure : public WiFiClient {
 public:
  bool secure() const override { return true; }
  void setCACert(const char *) {}
  void setInsecure() {}
  bool connect(const char *, uint16_t) { return false; }
  void stop() {}
  bool verify(const char *, const char *) { return false; }
};
