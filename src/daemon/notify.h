/* notify.h -- systemd's readiness protocol (sd_notify) without libsystemd:
 * one datagram "READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1"
 * or "STATUS=..." to the AF_UNIX socket named by $NOTIFY_SOCKET (a path,
 * or an abstract name written with a leading '@').  Without
 * $NOTIFY_SOCKET it does nothing.  Returns 0, or -1 with errno; never
 * blocks (MSG_DONTWAIT), never logs. */
#ifndef MF_DAEMON_NOTIFY_H
#define MF_DAEMON_NOTIFY_H
int notify_send(const char* state);
/* "RELOADING=1\nMONOTONIC_USEC=<now>" as Type=notify-reload expects. */
int notify_reloading(void);
#endif
