/* Enforce mode's exec guard for #! scripts (issue 7, "exec of a #! script from an
 * exec.deny tree"). The kernel's exec check (bpf/proc.bpf.c) runs at
 * sched_process_exec, when a script's own file has already been released and the image
 * is its interpreter: it cannot tell where the script lies. Here a fanotify
 * FAN_OPEN_EXEC_PERM mark on the deny trees' file systems holds every exec-open of a
 * file there until a thread of ours answers, from memory: an in-scope process opening
 * for exec a #! script (or any file that is not ELF: a binfmt_misc handler's) that lies
 * in a deny tree, or has no name (deleted, memfd), gets EPERM, and the interpreter never
 * starts. ELF binaries are left to the kernel. */
#ifndef BUILDWARDEN_EXECGUARD_H
#define BUILDWARDEN_EXECGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"

struct execguard;
struct bw_exec_event;

/* Whether pid is a build process. Called from the guard's thread: it must be safe
 * there (a BPF map lookup is). */
typedef bool (*execguard_in_build_fn)(void *ctx, pid_t pid);
/* A refused exec, as a record of the kernel's layout (flags BW_EXEC_REFUSED). */
typedef void (*execguard_cb)(const struct bw_exec_event *r, void *ctx);

/* Starts the guard for p's exec.deny trees: 0 or -errno. The thread starts with the
 * caller's signal mask: block the agent's signals first. */
int execguard__new(const struct bw_policy *p, execguard_in_build_fn in_build, void *ctx,
		   struct execguard **out);
/* The policy after a reload: its deny trees (their file systems are marked too) and
 * scope; active false lets every exec through (audit mode). 0 or -errno. */
int execguard__set_policy(struct execguard *g, const struct bw_policy *p, bool active);
/* Readable when refusals wait: execguard__process hands them to cb. */
int execguard__fd(const struct execguard *g);
int execguard__process(struct execguard *g, execguard_cb cb, void *ctx);
/* Refusals whose report could not be queued (the exec was still refused). */
uint64_t execguard__lost(const struct execguard *g);
/* How many exec-opens the guard answered, and how many it refused. */
uint64_t execguard__answered(const struct execguard *g);
void execguard__free(struct execguard *g);

/* The decision, apart from fanotify, for tests: is the file open as fd, at path
 * (readlink of its descriptor), a non-ELF file (a #! script) in one of p's deny trees?
 * Returns the tree's index, -2 for one with no name (path ends in " (deleted)" or is not
 * absolute), or -1 (an ELF file, or outside the trees). */
int execguard__script_tree(const struct bw_policy *p, int fd, const char *path);

#endif
