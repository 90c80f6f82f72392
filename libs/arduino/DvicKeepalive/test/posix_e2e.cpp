// The library itself (DvicKeepalive.h: WiFi, HTTPClient, the core) over the POSIX socket shim,
// against a real server: argv[1] server URL, argv[2] token. Prints each send's HTTP status.
#include <stdio.h>
#include <DvicKeepalive.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  DvicKeepalive dvic(argv[1], argv[2]);
  dvic.begin("lab-wifi", "password");
  dvic.setPeriod(1);
  dvic.setFirmware("posix-shim");
  dvic.setDemo("e2e");
  dvic.setNumber("temp_c", 21.5);
  dvic.warn("first \"line\"");
  dvic.info("second line");
  int first = dvic.loop();
  printf("%d\n", first);
  // The next one only after the period: loop() sends nothing before.
  int early = dvic.loop();
  delay(1100);
  int second = dvic.loop();
  printf("%d %d\n", early, second);
  fflush(stdout);
  return first == 204 && early == 0 && second == 204 ? 0 : 1;
}
