/* fdio.h -- whole-buffer writes to a file descriptor.
 * fd_write_all writes all len bytes, retrying on EINTR and short writes;
 * 0 on success, -1 with errno on failure (nothing is logged). */
#ifndef MF_FDIO_H
#define MF_FDIO_H
int fd_write_all(int fd, const char* b, unsigned long len);
/* The same with a deadline (CLOCK_MONOTONIC milliseconds, <= 0: none) for
 * a non-blocking fd: waits for room with poll; -1 with errno ETIMEDOUT
 * when the deadline passes first. */
int fd_write_deadline(int fd, const char* b, unsigned long len, long long deadline_ms);
#endif
