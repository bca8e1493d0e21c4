/*
 * stuck-fuse: a FUSE file system of one regular file, MOUNTPOINT/stuck, whose read never returns
 * (the daemon never answers FUSE_READ), for powerprint's tests. It stands in for kernel files
 * whose read blocks whatever the open flags say: another process's /proc/PID/cmdline or environ
 * while that process holds its mmap lock in D state (`ps` hangs there), a sysfs attribute of a
 * wedged driver. O_NONBLOCK does not help (FUSE waits for its daemon), unlike a tracefs trace_pipe.
 * Killing the daemon aborts the connection: a stuck read then fails with ENOTCONN.
 *
 * Usage (root): stuck-fuse MOUNTPOINT  (mounts, serves in the foreground until killed)
 * Talks the kernel's FUSE protocol on /dev/fuse directly (linux/fuse.h): no libfuse needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_ID 1
#define FILE_ID 2
#define BUFFER_BYTES (1024 * 1024 + 8192)

static int fuse_fd;

static void reply(uint64_t unique, int error, const void *payload, size_t size) {
  char out[sizeof(struct fuse_out_header) + 256];
  struct fuse_out_header *h = (struct fuse_out_header *)out;
  if (size > 256) size = 256;
  h->len = (uint32_t)(sizeof *h + (error ? 0 : size));
  h->error = error;
  h->unique = unique;
  if (!error && size) memcpy(out + sizeof *h, payload, size);
  if (write(fuse_fd, out, h->len) < 0 && errno != ENOENT) perror("stuck-fuse: write");
}

static void fill_attr(struct fuse_attr *a, uint64_t id) {
  memset(a, 0, sizeof *a);
  a->ino = id;
  a->nlink = 1;
  a->blksize = 4096;
  if (id == ROOT_ID) {
    a->mode = S_IFDIR | 0755;
    a->nlink = 2;
  } else {
    a->mode = S_IFREG | 0444;
    a->size = 4096;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: stuck-fuse MOUNTPOINT\n");
    return 2;
  }
  fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse_fd < 0) { perror("stuck-fuse: /dev/fuse"); return 1; }
  char options[128];
  snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fuse_fd);
  if (mount("stuck-fuse", argv[1], "fuse.stuck-fuse", MS_NOSUID | MS_NODEV, options) != 0) { perror("stuck-fuse: mount"); return 1; }
  char *buf = malloc(BUFFER_BYTES);
  if (!buf) return 1;
  for (;;) {
    ssize_t n = read(fuse_fd, buf, BUFFER_BYTES);
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
      if (errno == ENODEV) return 0; /* unmounted */
      perror("stuck-fuse: read");
      return 1;
    }
    if ((size_t)n < sizeof(struct fuse_in_header)) continue;
    struct fuse_in_header *in = (struct fuse_in_header *)buf;
    const char *body = buf + sizeof *in;
    switch (in->opcode) {
      case FUSE_INIT: {
        const struct fuse_init_in *init = (const struct fuse_init_in *)body;
        struct fuse_init_out out;
        memset(&out, 0, sizeof out);
        out.major = FUSE_KERNEL_VERSION;
        out.minor = init->minor < FUSE_KERNEL_MINOR_VERSION ? init->minor : FUSE_KERNEL_MINOR_VERSION;
        out.max_readahead = init->max_readahead;
        out.max_write = 65536;
        out.max_background = 16;
        out.congestion_threshold = 12;
        out.time_gran = 1;
        reply(in->unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_LOOKUP: {
        if (in->nodeid != ROOT_ID || strcmp(body, "stuck") != 0) { reply(in->unique, -ENOENT, NULL, 0); break; }
        struct fuse_entry_out out;
        memset(&out, 0, sizeof out);
        out.nodeid = FILE_ID;
        out.entry_valid = 3600;
        out.attr_valid = 3600;
        fill_attr(&out.attr, FILE_ID);
        reply(in->unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_GETATTR: {
        struct fuse_attr_out out;
        memset(&out, 0, sizeof out);
        out.attr_valid = 3600;
        fill_attr(&out.attr, in->nodeid == ROOT_ID ? ROOT_ID : FILE_ID);
        reply(in->unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_OPEN:
      case FUSE_OPENDIR: {
        struct fuse_open_out out;
        memset(&out, 0, sizeof out);
        out.open_flags = FOPEN_DIRECT_IO; /* every read comes here, never from the page cache */
        reply(in->unique, 0, &out, sizeof out);
        break;
      }
      case FUSE_READ: /* never answered: the reader waits until the daemon dies */
      case FUSE_FORGET:
      case FUSE_BATCH_FORGET:
      case FUSE_INTERRUPT:
        break;
      case FUSE_FLUSH:
      case FUSE_RELEASE:
      case FUSE_RELEASEDIR:
        reply(in->unique, 0, NULL, 0);
        break;
      case FUSE_DESTROY:
        return 0;
      default:
        reply(in->unique, -ENOSYS, NULL, 0);
    }
  }
}
