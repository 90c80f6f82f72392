#pragma once
/** Shim: the plain client; HTTPClient does the socket work. */
class WiFiClient {
 public:
  virtual ~WiFiClient() {}
  virtual bool secure() const { return false; }
};
