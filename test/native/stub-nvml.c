/*
 * Stub libnvidia-ml.so.1 for powerprint's tests and benchmark. NOT NVIDIA code: it exports the
 * subset of the NVML C API (signatures and return codes as in nvml.h) that collectors/nvml.ts
 * calls, and answers from a scripted control file so tests can advance time, lose a GPU, reset
 * a counter, and change the process-info struct stride.
 *
 * The control file is named by the environment variable STUB_NVML_SCRIPT and re-read whenever
 * its inode, size or mtime changes (tests replace it atomically with rename). One `key value`
 * per line; '#' starts a comment. Keys:
 *   init_error N                 nvmlInit_v2 returns N (e.g. 9 = DRIVER_NOT_LOADED)
 *   count N                      number of GPUs (max 16)
 *   proc_stride 24|32            bytes per process record written by ..._v3 (default 24)
 *   gpuI.name TEXT               rest of the line
 *   gpuI.uuid TEXT
 *   gpuI.energy_mj N|unsupported cumulative energy, millijoules (u64)
 *   gpuI.power_mw N|unsupported  power, milliwatts
 *   gpuI.util N                  GPU utilisation percent; gpuI.mem_util N
 *   gpuI.mem_total N / gpuI.mem_used N   bytes
 *   gpuI.lost 1                  every device call returns NVML_ERROR_GPU_IS_LOST (15)
 *   gpuI.procs pid:bytes,...     compute processes
 *   gpuI.samples pid:sm:mem:timestampMicros,...   process utilisation samples
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 16
#define MAX_PROCS 64

typedef int nvmlReturn_t;
typedef struct stub_gpu *nvmlDevice_t;

typedef struct { unsigned int gpu; unsigned int memory; } nvmlUtilization_t;
typedef struct { unsigned long long total; unsigned long long free; unsigned long long used; } nvmlMemory_t;
typedef struct {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

struct stub_proc { unsigned int pid; unsigned long long bytes; };
struct stub_sample { unsigned int pid, sm, mem; unsigned long long ts; };

struct stub_gpu {
  int index;
  char name[96], uuid[96];
  int energy_supported, power_supported, lost;
  unsigned long long energy_mj;
  unsigned int power_mw, util, mem_util;
  unsigned long long mem_total, mem_used;
  int nprocs, nsamples;
  struct stub_proc procs[MAX_PROCS];
  struct stub_sample samples[MAX_PROCS];
};

static struct stub_gpu gpus[MAX_GPUS];
static int gpu_count = 0, init_error = 0, proc_stride = 24, initialised = 0;
static struct stat last_stat;
static int have_stat = 0;

static void set_defaults(void) {
  memset(gpus, 0, sizeof gpus);
  gpu_count = 0; init_error = 0; proc_stride = 24;
  for (int i = 0; i < MAX_GPUS; i++) {
    gpus[i].index = i;
    snprintf(gpus[i].name, sizeof gpus[i].name, "Stub GPU %d", i);
    snprintf(gpus[i].uuid, sizeof gpus[i].uuid, "GPU-00000000-0000-0000-0000-%012d", i);
    gpus[i].energy_supported = 1; gpus[i].power_supported = 1;
    gpus[i].mem_total = 80ULL << 30;
  }
}

static void parse_procs(struct stub_gpu *g, const char *v) {
  g->nprocs = 0;
  while (*v && g->nprocs < MAX_PROCS) {
    unsigned int pid; unsigned long long bytes; int n = 0;
    if (sscanf(v, "%u:%llu%n", &pid, &bytes, &n) < 2) break;
    g->procs[g->nprocs].pid = pid; g->procs[g->nprocs].bytes = bytes; g->nprocs++;
    v += n; if (*v == ',') v++;
  }
}

static void parse_samples(struct stub_gpu *g, const char *v) {
  g->nsamples = 0;
  while (*v && g->nsamples < MAX_PROCS) {
    unsigned int pid, sm, mem; unsigned long long ts; int n = 0;
    if (sscanf(v, "%u:%u:%u:%llu%n", &pid, &sm, &mem, &ts, &n) < 4) break;
    struct stub_sample *s = &g->samples[g->nsamples++];
    s->pid = pid; s->sm = sm; s->mem = mem; s->ts = ts;
    v += n; if (*v == ',') v++;
  }
}

/* Re-reads the control file when it changed. Called at the start of every exported function. */
static void reload(void) {
  const char *path = getenv("STUB_NVML_SCRIPT");
  if (!path) { if (!have_stat) { set_defaults(); have_stat = 1; } return; }
  struct stat st;
  if (stat(path, &st) != 0) return;
  if (have_stat && st.st_ino == last_stat.st_ino && st.st_size == last_stat.st_size &&
      st.st_mtim.tv_sec == last_stat.st_mtim.tv_sec && st.st_mtim.tv_nsec == last_stat.st_mtim.tv_nsec)
    return;
  FILE *f = fopen(path, "r");
  if (!f) return;
  last_stat = st; have_stat = 1;
  set_defaults();
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (line[0] == '#' || line[0] == 0) continue;
    char *sp = strchr(line, ' ');
    if (!sp) continue;
    *sp = 0;
    const char *key = line, *val = sp + 1;
    if (!strcmp(key, "count")) { gpu_count = atoi(val); if (gpu_count > MAX_GPUS) gpu_count = MAX_GPUS; continue; }
    if (!strcmp(key, "init_error")) { init_error = atoi(val); continue; }
    if (!strcmp(key, "proc_stride")) { proc_stride = atoi(val) == 32 ? 32 : 24; continue; }
    int idx; char field[64];
    if (sscanf(key, "gpu%d.%63s", &idx, field) != 2 || idx < 0 || idx >= MAX_GPUS) continue;
    struct stub_gpu *g = &gpus[idx];
    if (!strcmp(field, "name")) snprintf(g->name, sizeof g->name, "%s", val);
    else if (!strcmp(field, "uuid")) snprintf(g->uuid, sizeof g->uuid, "%s", val);
    else if (!strcmp(field, "energy_mj")) {
      if (!strcmp(val, "unsupported")) g->energy_supported = 0; else g->energy_mj = strtoull(val, NULL, 10);
    } else if (!strcmp(field, "power_mw")) {
      if (!strcmp(val, "unsupported")) g->power_supported = 0; else g->power_mw = (unsigned int)strtoul(val, NULL, 10);
    } else if (!strcmp(field, "util")) g->util = (unsigned int)atoi(val);
    else if (!strcmp(field, "mem_util")) g->mem_util = (unsigned int)atoi(val);
    else if (!strcmp(field, "mem_total")) g->mem_total = strtoull(val, NULL, 10);
    else if (!strcmp(field, "mem_used")) g->mem_used = strtoull(val, NULL, 10);
    else if (!strcmp(field, "lost")) g->lost = atoi(val) != 0;
    else if (!strcmp(field, "procs")) parse_procs(g, val);
    else if (!strcmp(field, "samples")) parse_samples(g, val);
  }
  fclose(f);
}

#define CHECK_DEVICE(d)                                                        \
  do {                                                                         \
    reload();                                                                  \
    if (!initialised) return NVML_ERROR_UNINITIALIZED;                         \
    if ((d) == NULL) return NVML_ERROR_INVALID_ARGUMENT;                       \
    if ((d)->lost) return NVML_ERROR_GPU_IS_LOST;                              \
  } while (0)

nvmlReturn_t nvmlInit_v2(void) {
  reload();
  if (init_error) return init_error;
  initialised++;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  initialised--;
  return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  reload();
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  *count = (unsigned int)gpu_count;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  reload();
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  if (!device || index >= (unsigned int)gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
  if (gpus[index].lost) return NVML_ERROR_GPU_IS_LOST;
  *device = &gpus[index];
  return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(char *dst, unsigned int length, const char *src) {
  if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, strlen(src) + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
  CHECK_DEVICE(d);
  return copy_string(name, length, d->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
  CHECK_DEVICE(d);
  return copy_string(uuid, length, d->uuid);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *power) {
  CHECK_DEVICE(d);
  if (!d->power_supported) return NVML_ERROR_NOT_SUPPORTED;
  if (!power) return NVML_ERROR_INVALID_ARGUMENT;
  *power = d->power_mw;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *energy) {
  CHECK_DEVICE(d);
  if (!d->energy_supported) return NVML_ERROR_NOT_SUPPORTED;
  if (!energy) return NVML_ERROR_INVALID_ARGUMENT;
  *energy = d->energy_mj;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
  CHECK_DEVICE(d);
  if (!u) return NVML_ERROR_INVALID_ARGUMENT;
  u->gpu = d->util; u->memory = d->mem_util;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
  CHECK_DEVICE(d);
  if (!m) return NVML_ERROR_INVALID_ARGUMENT;
  m->total = d->mem_total; m->used = d->mem_used; m->free = d->mem_total - d->mem_used;
  return NVML_SUCCESS;
}

/* Writes records of proc_stride bytes: {u32 pid; pad; u64 usedGpuMemory; u32 gi; u32 ci; [u64 ccProtected]}. */
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *infoCount, void *infos) {
  CHECK_DEVICE(d);
  if (!infoCount) return NVML_ERROR_INVALID_ARGUMENT;
  if (*infoCount < (unsigned int)d->nprocs || (infos == NULL && d->nprocs > 0)) {
    *infoCount = (unsigned int)d->nprocs;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  unsigned char *out = infos;
  for (int i = 0; i < d->nprocs; i++) {
    unsigned char *rec = out + (size_t)i * proc_stride;
    memset(rec, 0, proc_stride);
    unsigned int pid = d->procs[i].pid, gi = 0xFFFFFFFFu, ci = 0xFFFFFFFFu;
    unsigned long long bytes = d->procs[i].bytes;
    memcpy(rec, &pid, 4);
    memcpy(rec + 8, &bytes, 8);
    memcpy(rec + 16, &gi, 4);
    memcpy(rec + 20, &ci, 4);
  }
  *infoCount = (unsigned int)d->nprocs;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *processSamplesCount, unsigned long long lastSeenTimeStamp) {
  CHECK_DEVICE(d);
  if (!processSamplesCount) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned int n = 0;
  for (int i = 0; i < d->nsamples; i++) if (d->samples[i].ts > lastSeenTimeStamp) n++;
  if (n == 0) { *processSamplesCount = 0; return NVML_ERROR_NOT_FOUND; }
  if (utilization == NULL || *processSamplesCount < n) { *processSamplesCount = n; return NVML_ERROR_INSUFFICIENT_SIZE; }
  unsigned int k = 0;
  for (int i = 0; i < d->nsamples; i++) {
    struct stub_sample *s = &d->samples[i];
    if (s->ts <= lastSeenTimeStamp) continue;
    utilization[k].pid = s->pid; utilization[k].timeStamp = s->ts;
    utilization[k].smUtil = s->sm; utilization[k].memUtil = s->mem;
    utilization[k].encUtil = 0; utilization[k].decUtil = 0;
    k++;
  }
  *processSamplesCount = k;
  return NVML_SUCCESS;
}
