/* Writes CLOCK_REALTIME (ns) to argv[1], then execs argv[2..]: the instant powerprint starts. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct timespec t;
  if (argc < 3) return 2;
  FILE *f = fopen(argv[1], "w");
  if (!f) return 1;
  clock_gettime(CLOCK_REALTIME, &t);
  fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  fclose(f);
  execvp(argv[2], argv + 2);
  return 127;
}
