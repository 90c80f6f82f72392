// A demo on an ESP32 that tells the DVIC server it is alive every 30 s, with a sensor value
// and a log line when something happens. The token is the one `dvic devices add` printed.
#include <DvicKeepalive.h>

DvicKeepalive dvic("http://dvic.lab:8787", "dvk_your_device_token");

void setup() {
  dvic.begin("lab-wifi", "wifi-password");
  dvic.setPeriod(30);
  dvic.setFirmware("1.0.0");
  dvic.setDemo("light-sensor");
  dvic.info("booted");
}

void loop() {
  int light = analogRead(34);
  dvic.setNumber("light", light);
  if (light < 100) dvic.log(dvic.WARN, "too dark");
  dvic.loop();
  delay(1000);
}
