// A battery demo: wake, measure, send one keepalive, deep-sleep 5 minutes. Set the device's
// period to 300 s on the server so a missed wake-up shows late, then down.
#include <DvicKeepalive.h>

DvicKeepalive dvic("https://dvic.lab", "dvk_your_device_token");
static const char *CA = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";

void setup() {
  dvic.begin("lab-wifi", "wifi-password");
  dvic.setCACert(CA);
  dvic.setNumber("battery_v", analogRead(35) * 2 * 3.3 / 4095);
  dvic.sendAndSleep(300);
}

void loop() {}
