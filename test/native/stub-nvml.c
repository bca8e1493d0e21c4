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
 *   gpuI.minor N                 minor number of /dev/nvidia<N> (default I)
 * MIG (nvml.h's MIG and GPM API; a GPU without `mig` answers NOT_SUPPORTED, as a non-MIG board):
 *   gpuI.mig 0|1                 MIG mode (current = pending); 1: utilisation and per-process
 *                                samples answer NOT_SUPPORTED on the GPU, as NVML does under MIG
 *   gpuI.total_slices N          slices of the whole GPU (the largest GPU instance profile; default 7)
 *   gpuI.migJ.gi N / .ci N       MIG device J (index 0..7): its GPU and compute instance ids
 *   gpuI.migJ.gi_slices N / .ci_slices N / .sms N / .mem_mb N   nvmlDeviceAttributes_t
 *   gpuI.migJ.name TEXT / .uuid TEXT
 *   gpuI.migJ.procs pid:bytes,...  processes of the instance (the GPU's list shows them too, with
 *                                their GPU/compute instance ids)
 *   gpuI.migJ.parent_only_procs pid:bytes,...  processes only the GPU's list shows (with the
 *                                instance's ids), not the MIG device's own list
 *   gpuI.gpm 0|1                 GPM support (Hopper and later)
 *   gpuI.gpm_clock_ms N          GPM's clock: a sample holds it
 *   gpuI.giN.sm_busy_ms N        cumulative busy time of GPU instance N's SMs (mean over its SMs),
 *                                ms: SM_UTIL = 100 × Δbusy / Δclock between two samples
 * With STUB_NVML_READ_LOG set (a file), every energy counter read appends "energy gpuI VALUE" to it:
 * a test's job can wait for the collector's first reads before it scripts the counter's climb (a
 * first read that comes late under load otherwise misses part of it).
 * With STUB_NVML_HANG_FILE set (a path): while that file exists, nvmlInit_v2,
 * nvmlDeviceGetPowerUsage and nvmlDeviceGetTotalEnergyConsumption do not return (a wedged driver: a
 * GPU fallen off the bus); each polls for the file every 5 ms and goes on once it is removed. A
 * call that entered the wait appends "hang FUNCTION" to STUB_NVML_READ_LOG when that is set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
#define MAX_MIG 8
#define MAX_GI 16
#define NVML_GPM_METRIC_MAX 333
#define NVML_GPM_METRIC_SM_UTIL 2

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
  unsigned int minor;
  /* MIG: mig_mode -1 = not supported; is_mig marks a MIG device handle (parent set). */
  int mig_mode, is_mig, present, total_slices;
  struct stub_gpu *parent;
  unsigned int gi, ci, gi_slices, ci_slices, sms;
  unsigned long long mem_mb;
  int gpm;
  unsigned long long gpm_clock_ms, gi_busy_ms[MAX_GI];
  int nparent_only;
  struct stub_proc parent_only[MAX_PROCS];
};

static struct stub_gpu gpus[MAX_GPUS];
static struct stub_gpu migs[MAX_GPUS][MAX_MIG];
static int gpu_count = 0, init_error = 0, proc_stride = 24, initialised = 0;
static struct stat last_stat;
static int have_stat = 0;

static void set_defaults(void) {
  memset(gpus, 0, sizeof gpus);
  memset(migs, 0, sizeof migs);
  gpu_count = 0; init_error = 0; proc_stride = 24;
  for (int i = 0; i < MAX_GPUS; i++) {
    gpus[i].index = i;
    snprintf(gpus[i].name, sizeof gpus[i].name, "Stub GPU %d", i);
    snprintf(gpus[i].uuid, sizeof gpus[i].uuid, "GPU-00000000-0000-0000-0000-%012d", i);
    gpus[i].energy_supported = 1; gpus[i].power_supported = 1;
    gpus[i].mem_total = 80ULL << 30;
    gpus[i].minor = (unsigned int)i;
    gpus[i].mig_mode = -1;
    gpus[i].total_slices = 7;
    for (int j = 0; j < MAX_MIG; j++) {
      struct stub_gpu *m = &migs[i][j];
      m->index = j; m->is_mig = 1; m->parent = &gpus[i];
      snprintf(m->name, sizeof m->name, "Stub GPU %d MIG %d", i, j);
      snprintf(m->uuid, sizeof m->uuid, "MIG-00000000-0000-0000-%04d-%012d", i, j);
      m->ci_slices = 1; m->gi_slices = 1;
    }
  }
}

/* gpuI.migJ.FIELD VALUE */
static void set_mig_field(struct stub_gpu *m, const char *field, const char *val) {
  m->present = 1;
  if (!strcmp(field, "gi")) m->gi = (unsigned int)atoi(val);
  else if (!strcmp(field, "ci")) m->ci = (unsigned int)atoi(val);
  else if (!strcmp(field, "gi_slices")) m->gi_slices = (unsigned int)atoi(val);
  else if (!strcmp(field, "ci_slices")) m->ci_slices = (unsigned int)atoi(val);
  else if (!strcmp(field, "sms")) m->sms = (unsigned int)atoi(val);
  else if (!strcmp(field, "mem_mb")) m->mem_mb = strtoull(val, NULL, 10);
  else if (!strcmp(field, "name")) snprintf(m->name, sizeof m->name, "%s", val);
  else if (!strcmp(field, "uuid")) snprintf(m->uuid, sizeof m->uuid, "%s", val);
}

static int parse_proc_list(struct stub_proc *procs, const char *v) {
  int count = 0;
  while (*v && count < MAX_PROCS) {
    unsigned int pid; unsigned long long bytes; int n = 0;
    if (sscanf(v, "%u:%llu%n", &pid, &bytes, &n) < 2) break;
    procs[count].pid = pid; procs[count].bytes = bytes; count++;
    v += n; if (*v == ',') v++;
  }
  return count;
}

static void parse_procs(struct stub_gpu *g, const char *v) { g->nprocs = parse_proc_list(g->procs, v); }

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
    int idx, sub; char field[64];
    if (sscanf(key, "gpu%d.mig%d.%63s", &idx, &sub, field) == 3) {
      if (idx < 0 || idx >= MAX_GPUS || sub < 0 || sub >= MAX_MIG) continue;
      if (!strcmp(field, "procs")) { migs[idx][sub].present = 1; parse_procs(&migs[idx][sub], val); }
      else if (!strcmp(field, "parent_only_procs")) { migs[idx][sub].present = 1; migs[idx][sub].nparent_only = parse_proc_list(migs[idx][sub].parent_only, val); }
      else set_mig_field(&migs[idx][sub], field, val);
      continue;
    }
    if (sscanf(key, "gpu%d.gi%d.%63s", &idx, &sub, field) == 3) {
      if (idx < 0 || idx >= MAX_GPUS || sub < 0 || sub >= MAX_GI) continue;
      if (!strcmp(field, "sm_busy_ms")) gpus[idx].gi_busy_ms[sub] = strtoull(val, NULL, 10);
      continue;
    }
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
    else if (!strcmp(field, "minor")) g->minor = (unsigned int)atoi(val);
    else if (!strcmp(field, "mig")) g->mig_mode = atoi(val) != 0;
    else if (!strcmp(field, "total_slices")) g->total_slices = atoi(val);
    else if (!strcmp(field, "gpm")) g->gpm = atoi(val) != 0;
    else if (!strcmp(field, "gpm_clock_ms")) g->gpm_clock_ms = strtoull(val, NULL, 10);
  }
  fclose(f);
}

#define CHECK_DEVICE(d)                                                        \
  do {                                                                         \
    reload();                                                                  \
    if (!initialised) return NVML_ERROR_UNINITIALIZED;                         \
    if ((d) == NULL) return NVML_ERROR_INVALID_ARGUMENT;                       \
    if ((d)->lost || ((d)->parent && (d)->parent->lost)) return NVML_ERROR_GPU_IS_LOST; \
  } while (0)

/* Blocks while STUB_NVML_HANG_FILE exists (see the head comment). */
static void hang_while_asked(const char *function) {
  const char *path = getenv("STUB_NVML_HANG_FILE");
  if (!path || access(path, F_OK) != 0) return;
  const char *log = getenv("STUB_NVML_READ_LOG");
  if (log) {
    FILE *f = fopen(log, "a");
    if (f) { fprintf(f, "hang %s\n", function); fclose(f); }
  }
  const struct timespec step = {0, 5 * 1000 * 1000};
  while (access(path, F_OK) == 0) nanosleep(&step, NULL);
}

nvmlReturn_t nvmlInit_v2(void) {
  hang_while_asked("nvmlInit_v2");
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
  hang_while_asked("nvmlDeviceGetPowerUsage");
  CHECK_DEVICE(d);
  if (!d->power_supported) return NVML_ERROR_NOT_SUPPORTED;
  if (!power) return NVML_ERROR_INVALID_ARGUMENT;
  *power = d->power_mw;
  return NVML_SUCCESS;
}

/* One line per energy counter read in STUB_NVML_READ_LOG, when set (see the head comment). */
static void log_energy_read(const struct stub_gpu *d) {
  const char *path = getenv("STUB_NVML_READ_LOG");
  if (!path || d->is_mig) return;
  FILE *f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "energy gpu%d %llu\n", d->index, (unsigned long long)d->energy_mj);
  fclose(f);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *energy) {
  hang_while_asked("nvmlDeviceGetTotalEnergyConsumption");
  CHECK_DEVICE(d);
  if (!d->energy_supported) return NVML_ERROR_NOT_SUPPORTED;
  if (!energy) return NVML_ERROR_INVALID_ARGUMENT;
  *energy = d->energy_mj;
  log_energy_read(d);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
  CHECK_DEVICE(d);
  if (d->mig_mode == 1 || d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
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

/* One record of proc_stride bytes: {u32 pid; pad; u64 usedGpuMemory; u32 gi; u32 ci; [u64 ccProtected]}. */
static void write_record(unsigned char *rec, const struct stub_proc *p, unsigned int gi, unsigned int ci) {
  memset(rec, 0, proc_stride);
  memcpy(rec, &p->pid, 4);
  memcpy(rec + 8, &p->bytes, 8);
  memcpy(rec + 16, &gi, 4);
  memcpy(rec + 20, &ci, 4);
}

/* A MIG-enabled GPU lists its own processes and every MIG device's (with their instance ids); a MIG
 * device handle lists its own; a GPU without MIG its own, with instance ids 0xFFFFFFFF. */
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *infoCount, void *infos) {
  CHECK_DEVICE(d);
  if (!infoCount) return NVML_ERROR_INVALID_ARGUMENT;
  int total = d->nprocs;
  if (d->mig_mode == 1)
    for (int j = 0; j < MAX_MIG; j++)
      if (migs[d->index][j].present) total += migs[d->index][j].nprocs + migs[d->index][j].nparent_only;
  if (*infoCount < (unsigned int)total || (infos == NULL && total > 0)) {
    *infoCount = (unsigned int)total;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  unsigned char *out = infos;
  int k = 0;
  unsigned int none = 0xFFFFFFFFu;
  for (int i = 0; i < d->nprocs; i++, k++)
    write_record(out + (size_t)k * proc_stride, &d->procs[i], d->is_mig ? d->gi : none, d->is_mig ? d->ci : none);
  if (d->mig_mode == 1)
    for (int j = 0; j < MAX_MIG; j++) {
      struct stub_gpu *m = &migs[d->index][j];
      if (!m->present) continue;
      for (int i = 0; i < m->nprocs; i++, k++) write_record(out + (size_t)k * proc_stride, &m->procs[i], m->gi, m->ci);
      for (int i = 0; i < m->nparent_only; i++, k++) write_record(out + (size_t)k * proc_stride, &m->parent_only[i], m->gi, m->ci);
    }
  *infoCount = (unsigned int)total;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *processSamplesCount, unsigned long long lastSeenTimeStamp) {
  CHECK_DEVICE(d);
  if (d->mig_mode == 1 || d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
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

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor) {
  CHECK_DEVICE(d);
  if (!minor || d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
  *minor = d->minor;
  return NVML_SUCCESS;
}

/* ---- MIG (nvml.h "Multi Instance GPU Management") ---- */

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *currentMode, unsigned int *pendingMode) {
  CHECK_DEVICE(d);
  if (!currentMode || !pendingMode) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->is_mig || d->mig_mode < 0) return NVML_ERROR_NOT_SUPPORTED;
  *currentMode = (unsigned int)d->mig_mode; *pendingMode = (unsigned int)d->mig_mode;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *count) {
  CHECK_DEVICE(d);
  if (!count || d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
  *count = d->mig_mode < 0 ? 0 : MAX_MIG - 1;  /* 7 on A100/H100 */
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index, nvmlDevice_t *mig) {
  CHECK_DEVICE(d);
  if (!mig || d->is_mig || index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->mig_mode != 1) return NVML_ERROR_NOT_SUPPORTED;
  if (!migs[d->index][index].present) return NVML_ERROR_NOT_FOUND;
  *mig = &migs[d->index][index];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int *isMig) {
  CHECK_DEVICE(d);
  if (!isMig) return NVML_ERROR_INVALID_ARGUMENT;
  *isMig = (unsigned int)d->is_mig;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id) {
  CHECK_DEVICE(d);
  if (!id) return NVML_ERROR_INVALID_ARGUMENT;
  if (!d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
  *id = d->gi;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id) {
  CHECK_DEVICE(d);
  if (!id) return NVML_ERROR_INVALID_ARGUMENT;
  if (!d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
  *id = d->ci;
  return NVML_SUCCESS;
}

typedef struct {
  unsigned int multiprocessorCount, sharedCopyEngineCount, sharedDecoderCount, sharedEncoderCount,
      sharedJpegCount, sharedOfaCount, gpuInstanceSliceCount, computeInstanceSliceCount;
  unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

/* "This API currently only supports MIG device handles." */
nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t d, nvmlDeviceAttributes_t *a) {
  CHECK_DEVICE(d);
  if (!a) return NVML_ERROR_INVALID_ARGUMENT;
  if (!d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
  memset(a, 0, sizeof *a);
  a->multiprocessorCount = d->sms; a->gpuInstanceSliceCount = d->gi_slices;
  a->computeInstanceSliceCount = d->ci_slices; a->memorySizeMB = d->mem_mb;
  return NVML_SUCCESS;
}

typedef struct {
  unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount, copyEngineCount,
      decoderCount, encoderCount, jpegCount, ofaCount;
  unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;

/* Profiles 0x0..0x6 are the 1, 2, 3, 4, 7, 8 and 6 slice profiles; the GPU has those up to
 * total_slices (6 and 8 only as its whole). */
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t d, unsigned int profile, nvmlGpuInstanceProfileInfo_t *info) {
  static const unsigned int slices[] = {1, 2, 3, 4, 7, 8, 6};
  CHECK_DEVICE(d);
  if (!info || d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->mig_mode < 0) return NVML_ERROR_NOT_SUPPORTED;
  if (profile >= sizeof slices / sizeof slices[0]) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned int s = slices[profile];
  if (s > (unsigned int)d->total_slices || ((s == 6 || s == 8) && s != (unsigned int)d->total_slices)) return NVML_ERROR_NOT_SUPPORTED;
  memset(info, 0, sizeof *info);
  info->id = profile; info->sliceCount = s; info->instanceCount = (unsigned int)d->total_slices / s;
  return NVML_SUCCESS;
}

/* ---- GPM (nvml.h "GPM Functions"; Hopper and later) ---- */

typedef struct { unsigned int version, isSupportedDevice; } nvmlGpmSupport_t;
struct nvmlGpmSample_st { int valid; struct stub_gpu *gpu; unsigned int gi; unsigned long long clock_ms, busy_ms; };
typedef struct { struct nvmlGpmSample_st *handle; } nvmlGpmSample_t;
typedef struct { char *shortName, *longName, *unit; } nvmlGpmMetricMetricInfo_t;
typedef struct { unsigned int metricId; nvmlReturn_t nvmlReturn; double value; nvmlGpmMetricMetricInfo_t metricInfo; } nvmlGpmMetric_t;
typedef struct {
  unsigned int version, numMetrics;
  nvmlGpmSample_t sample1, sample2;
  nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25

nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t d, nvmlGpmSupport_t *support) {
  CHECK_DEVICE(d);
  if (!support) return NVML_ERROR_INVALID_ARGUMENT;
  if (support->version != 1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  support->isSupportedDevice = (unsigned int)(d->is_mig ? d->parent->gpm : d->gpm);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *sample) {
  if (!sample) return NVML_ERROR_INVALID_ARGUMENT;
  sample->handle = calloc(1, sizeof *sample->handle);
  return sample->handle ? NVML_SUCCESS : 20; /* NVML_ERROR_MEMORY */
}

nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t sample) {
  if (!sample.handle) return NVML_ERROR_INVALID_ARGUMENT;
  free(sample.handle);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmMigSampleGet(nvmlDevice_t d, unsigned int gpuInstanceId, nvmlGpmSample_t sample) {
  CHECK_DEVICE(d);
  if (!sample.handle || d->is_mig || gpuInstanceId >= MAX_GI) return NVML_ERROR_INVALID_ARGUMENT;
  if (!d->gpm || d->mig_mode != 1) return NVML_ERROR_NOT_SUPPORTED;
  int found = 0;
  for (int j = 0; j < MAX_MIG; j++) if (migs[d->index][j].present && migs[d->index][j].gi == gpuInstanceId) found = 1;
  if (!found) return NVML_ERROR_NOT_FOUND;
  sample.handle->valid = 1; sample.handle->gpu = d; sample.handle->gi = gpuInstanceId;
  sample.handle->clock_ms = d->gpm_clock_ms; sample.handle->busy_ms = d->gi_busy_ms[gpuInstanceId];
  return NVML_SUCCESS;
}

/* SM_UTIL only: 100 × Δbusy / Δclock of two samples of one GPU instance, in either order. */
nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *m) {
  reload();
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  if (!m) return NVML_ERROR_INVALID_ARGUMENT;
  if (m->version != 1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  struct nvmlGpmSample_st *a = m->sample1.handle, *b = m->sample2.handle;
  if (!a || !b || !a->valid || !b->valid || a->gpu != b->gpu || a->gi != b->gi || m->numMetrics > NVML_GPM_METRIC_MAX)
    return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned int i = 0; i < m->numMetrics; i++) {
    nvmlGpmMetric_t *metric = &m->metrics[i];
    memset(&metric->metricInfo, 0, sizeof metric->metricInfo);
    long long dclock = (long long)b->clock_ms - (long long)a->clock_ms;
    long long dbusy = (long long)b->busy_ms - (long long)a->busy_ms;
    if (metric->metricId != NVML_GPM_METRIC_SM_UTIL) { metric->nvmlReturn = NVML_ERROR_NOT_SUPPORTED; continue; }
    if (dclock == 0) { metric->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT; continue; }
    metric->value = 100.0 * (double)dbusy / (double)dclock;
    metric->nvmlReturn = NVML_SUCCESS;
  }
  return NVML_SUCCESS;
}
