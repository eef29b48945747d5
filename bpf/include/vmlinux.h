/* Picks the pinned, generated vmlinux.h for the target architecture. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux/x86/vmlinux.h"
#else
#error "no pinned vmlinux.h for this architecture: run scripts/gen-vmlinux.sh"
#endif
