/* Whom `run` runs the build as. The agent must stay out of the build's reach: a build
 * running as root could kill the agent, edit the sensor's maps, read the chain key and
 * rewrite the spool. So `run` drops the build to a user: --user USER[:GROUP], or, when
 * started through sudo, the user who called sudo (SUDO_UID/SUDO_GID). Everything that
 * may block or allocate (NSS look-ups) happens in run_user__resolve, before the fork;
 * run_user__enter is system calls only, for the forked child of a threaded process. */
#ifndef BUILDWARDEN_CLI_RUN_USER_H
#define BUILDWARDEN_CLI_RUN_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RUN_USER_MAX_GROUPS 256

struct run_user {
	bool drop;      /* false: the build keeps the caller's identity */
	uid_t uid;
	gid_t gid;
	/* supplementary groups: the user's from the group database (as login and su set
	 * them), none for a uid with no passwd entry */
	gid_t groups[RUN_USER_MAX_GROUPS];
	size_t n_groups;
	char name[64];  /* "" when the uid has no passwd entry */
	char home[256]; /* "" when unknown */
	char source[32]; /* where it came from: "--user", "SUDO_UID" */
};

/* spec: the --user argument, or NULL to take SUDO_UID/SUDO_GID from the environment
 * when present. 0 with *u set (u->drop false when there is nothing to drop to), or
 * -EINVAL with the reason in err (an unknown user or group, a malformed id). */
int run_user__resolve(const char *spec, struct run_user *u, char *err, size_t errlen);

/* True when the build would run with uid 0 (no --user, no SUDO_UID, or either naming
 * root) while we are root. */
bool run_user__is_root(const struct run_user *u);

/* In the child, before exec: supplementary groups, gid, uid (real, effective and saved,
 * so there is no way back), then PR_SET_NO_NEW_PRIVS (no setuid binary raises it
 * again). 0 or -errno; async-signal-safe. */
int run_user__enter(const struct run_user *u);

#endif /* BUILDWARDEN_CLI_RUN_USER_H */
