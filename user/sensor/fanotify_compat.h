/* fanotify constants newer than Debian 12's <sys/fanotify.h> (glibc 2.36, linux 6.1
 * headers), with the kernel's values: one place, so the features probe, the watchers and
 * the permission answers never disagree on a number. */
#ifndef BUILDWARDEN_SENSOR_FANOTIFY_COMPAT_H
#define BUILDWARDEN_SENSOR_FANOTIFY_COMPAT_H

#include <sys/fanotify.h>

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000 /* 6.14: pre-content event before a read/write/truncate */
#endif
#ifndef FAN_CLASS_PRE_CONTENT
#define FAN_CLASS_PRE_CONTENT 0x00000008
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6 /* 6.14: the byte range of a pre-content event */
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200 /* 5.19: a mark the kernel may drop with its inode */
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000 /* 6.13: an event whose fd failed says why */
#endif

#endif
