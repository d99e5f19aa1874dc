/*
 * File I/O helpers that handle EINTR and short reads/writes in one place, plus
 * small whole-file reads/writes and atomic replacement (temp file, fsync,
 * rename, fsync of the directory). Tests can inject failures (short writes,
 * ENOSPC, EIO) through fio_fault.
 */
#ifndef SM_FILEIO_H
#define SM_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Fault injection for tests: after `after` more successful write calls, the
 * next write fails with errno = err (0 disables). Process-wide. */
void fio_fault_set(int after, int err);
/* Like fio_fault_set, but the failing call first writes `partial` bytes of its
 * buffer (a torn write), then fails with err. */
void fio_fault_set_short(int after, size_t partial, int err);
/* After `after` more successful fsync/fdatasync calls, the next fails with err
 * (0 disables). */
void fio_fault_set_sync(int after, int err);

/* fsync / fdatasync through the fault injector. */
SM_MUST_CHECK int fio_fsync(int fd);
SM_MUST_CHECK int fio_fdatasync(int fd);

SM_MUST_CHECK int fio_pwrite_all(int fd, const void *buf, size_t len, int64_t off);
int fio_pread_all(int fd, void *buf, size_t len, int64_t off);
SM_MUST_CHECK int fio_write_all(int fd, const void *buf, size_t len);
/* fio_read_file, fio_write_file and fio_fsync_dir return SM_ERR_LIMIT when
 * they cannot open for want of a descriptor (EMFILE/ENFILE). */
/* Reads a whole file of at most max bytes into a new malloc'd buffer. */
int fio_read_file(const char *path, uint8_t **data, size_t *len, size_t max);
/* Writes a whole file; with atomic, through a temp file renamed into place
 * after fsync, then fsyncs the directory. */
SM_MUST_CHECK int fio_write_file(const char *path, const void *data, size_t len, bool atomic);
SM_MUST_CHECK int fio_fsync_dir(const char *dir);
/* Removes a directory tree (used for deleted partitions). */
int fio_remove_tree(const char *path);

#endif
