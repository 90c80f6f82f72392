// Shim: WiFi is "connected" at once on Linux; the loopback network stands in for it.
#pragma once
#include "WiFiClient.h"

enum { WL_IDLE_STATUS = 0, WL_CONNECTED = 3, WL_DISCONNECTED = 6 };
enum { WIFI_STA = 1 };

struct WiFiClass {
  int begins = 0;
  int state = WL_CONNECTED;
  void mode(int) {}
  void begin(const char *, const char *) { begins++; }
  void disconnect(bool = false) {}
  int status() { return state; }
  int RSSI() { return -61; }
};
static WiFiClass WiFi;
