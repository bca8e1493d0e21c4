/* A fixed CPU-bound job: argv[1] iterations of a dependent integer loop (no memory traffic). */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  unsigned long long n = argc > 1 ? strtoull(argv[1], 0, 10) : 1000000000ULL;
  volatile unsigned long long x = 1;
  unsigned long long y = 1;
  for (unsigned long long i = 0; i < n; i++) y = y * 6364136223846793005ULL + 1442695040888963407ULL;
  x = y;
  return (int)(x & 0);
}
