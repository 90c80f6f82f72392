/* Writes records through dvic_log.h for tests/test_c_header.py, then prints the log's path.
 *
 *   rotation_demo records MAX_BYTES MAX_FILES RECORDS [AFTER:G,G...]
 *       one writer; after AFTER records, deletes the rotated files of generations G as the agent does
 *   rotation_demo writers MAX_BYTES MAX_FILES THREADS CHILDREN COUNT
 *       forked children, then threads, each writing COUNT numbered records
 */
#include "dvic_log.h"

#include <sys/wait.h>

static int count;
static char pad[512]; /* records of varied lengths */

static void *thread_writer(void *arg) {
  int n = (int)(long)arg;
  for (int i = 0; i < count; i++) DVIC_INFO("thread%d %d %.*s", n, i, i % 300, pad);
  return NULL;
}

static void delete_generations(const char *list) {
  char name[4200];
  for (const char *p = list; *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p)) {
    snprintf(name, sizeof name, "%s.%ld", dvic_log_path(), strtol(p, NULL, 10));
    unlink(name);
  }
}

static int records(int argc, char **argv) {
  int total = atoi(argv[4]);
  for (int i = 1; i <= total; i++) {
    DVIC_INFO("record %d", i - 1);
    for (int a = 5; a < argc; a++) {
      if (atoi(argv[a]) == i) delete_generations(strchr(argv[a], ':') + 1);
    }
  }
  return 0;
}

static int writers(char **argv) {
  int threads = atoi(argv[4]), children = atoi(argv[5]);
  pthread_t ids[64];
  count = atoi(argv[6]);
  for (int n = 0; n < children; n++) {
    if (fork() == 0) {
      for (int i = 0; i < count; i++) DVIC_WARN("child%d %d %.*s", n, i, i % 500, pad);
      _exit(0);
    }
  }
  for (int n = 0; n < threads && n < 64; n++) pthread_create(&ids[n], NULL, thread_writer, (void *)(long)n);
  for (int n = 0; n < threads && n < 64; n++) pthread_join(ids[n], NULL);
  int status, failed = 0;
  while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  return failed;
}

int main(int argc, char **argv) {
  memset(pad, 'x', sizeof pad - 1);
  if (argc < 5 || dvic_log_open_rotate("rotation", 0, atol(argv[2]), atoi(argv[3])) != 0) return 2;
  int failed = strcmp(argv[1], "writers") == 0 && argc >= 7 ? writers(argv) : records(argc, argv);
  printf("%s\n", dvic_log_path());
  dvic_log_close();
  return failed;
}
