/* Writes CLOCK_REALTIME (ns) to argv[1] as its first act, then exits: the child whose start the
   start-up benchmark times. */
#include <stdio.h>
#include <time.h>
int main(int argc, char **argv) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "w");
  if (!f) return 1;
  fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  return fclose(f) == 0 ? 0 : 1;
}
