/*
 * EINTR- and short-write-safe file I/O, atomic file replacement and fault
 * injection (see fileio.h).
 */
#define _XOPEN_SOURCE 700
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"

/* An open that failed: SM_ERR_LIMIT when the process is out of descriptors
 * (the caller may wait for one and retry), SM_ERR_IO otherwise. */
static int open_status(void) {
    return errno == EMFILE || errno == ENFILE ? SM_ERR_LIMIT : SM_ERR_IO;
}

static atomic_int fault_after;
static atomic_int fault_err;
static _Atomic size_t fault_partial;
static atomic_int sync_after;
static atomic_int sync_err;

void fio_fault_set(int after, int err) { fio_fault_set_short(after, 0, err); }

void fio_fault_set_short(int after, size_t partial, int err) {
    atomic_store(&fault_err, 0);
    atomic_store(&fault_after, after);
    atomic_store(&fault_partial, partial);
    atomic_store(&fault_err, err);
}

void fio_fault_set_sync(int after, int err) {
    atomic_store(&sync_err, 0);
    atomic_store(&sync_after, after);
    atomic_store(&sync_err, err);
}

/* True when an injected fault should fire now; *partial: bytes the failing call
 * still writes first. The caller sets errno after that write. */
static bool fault_now(size_t *partial) {
    int err = atomic_load(&fault_err);
    if (!err) return false;
    if (atomic_fetch_sub(&fault_after, 1) > 0) return false;
    *partial = atomic_load(&fault_partial);
    return true;
}

static bool sync_fault_now(void) {
    int err = atomic_load(&sync_err);
    if (!err) return false;
    if (atomic_fetch_sub(&sync_after, 1) > 0) return false;
    errno = err;
    return true;
}

int fio_fsync(int fd) {
    if (sync_fault_now()) return SM_ERR_IO;
    return fsync(fd) ? SM_ERR_IO : SM_OK; /* no EINTR retry: Linux fsync is not interrupted */
}

int fio_fdatasync(int fd) {
    if (sync_fault_now()) return SM_ERR_IO;
    return fdatasync(fd) ? SM_ERR_IO : SM_OK;
}

int fio_pwrite_all(int fd, const void *buf, size_t len, int64_t off) {
    const uint8_t *p = buf;
    while (len) {
        size_t partial;
        if (fault_now(&partial)) {
            if (partial) (void)!pwrite(fd, p, partial < len ? partial : len, (off_t)off);
            errno = atomic_load(&fault_err) ? atomic_load(&fault_err) : EIO;
            return SM_ERR_IO;
        }
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return SM_ERR_IO;
        }
        p += w;
        off += w;
        len -= (size_t)w;
    }
    return SM_OK;
}

int fio_write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        size_t partial;
        if (fault_now(&partial)) {
            if (partial) (void)!write(fd, p, partial < len ? partial : len);
            errno = atomic_load(&fault_err) ? atomic_load(&fault_err) : EIO;
            return SM_ERR_IO;
        }
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return SM_ERR_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return SM_OK;
}

int fio_pread_all(int fd, void *buf, size_t len, int64_t off) {
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return SM_ERR_IO;
        }
        if (r == 0) return SM_ERR_PARSE; /* file ended early */
        p += r;
        off += r;
        len -= (size_t)r;
    }
    return SM_OK;
}

int fio_read_file(const char *path, uint8_t **data, size_t *len, size_t max) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SM_ERR_NOTFOUND : open_status();
    struct stat st;
    if (fstat(fd, &st) || (size_t)st.st_size > max) {
        close(fd);
        return SM_ERR_RANGE;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return SM_ERR_NOMEM;
    }
    int rc = fio_pread_all(fd, buf, n, 0);
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return SM_OK;
}

int fio_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return open_status();
    int rc = fio_fsync(fd);
    close(fd);
    return rc;
}

int fio_write_file(const char *path, const void *data, size_t len, bool atomic) {
    char tmp[4096];
    const char *target = path;
    if (atomic) {
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) return SM_ERR_RANGE;
        target = tmp;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return open_status();
    int rc = fio_write_all(fd, data, len);
    if (!rc && atomic) rc = fio_fsync(fd);
    if (close(fd) && !rc) rc = SM_ERR_IO;
    if (rc) {
        if (atomic) unlink(tmp);
        return rc;
    }
    if (atomic) {
        if (rename(tmp, path)) {
            unlink(tmp);
            return SM_ERR_IO;
        }
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", path);
        return fio_fsync_dir(dirname(dir));
    }
    return SM_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int fio_remove_tree(const char *path) {
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) ? SM_ERR_IO : SM_OK;
}
