/* A demo using dvic_log.h: writes a few records of every level, then exits. */
/* First: it selects the POSIX features it needs before any system header does. */
#include "dvic_log.h"

#include <stdio.h>

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 3;
  if (dvic_log_open(argc > 2 ? argv[2] : "c-example") != 0) {
    perror("dvic_log_open");
    return 1;
  }
  for (int i = 0; i < count; i++) DVIC_INFO("frame %d drawn", i);
  DVIC_WARN("multi\nline \"quoted\" %s", "é");
  DVIC_ERROR("error %d", 42);
  printf("%s\n", dvic_log_path());
  dvic_log_close();
  return 0;
}
