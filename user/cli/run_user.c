/* Whom `run` runs the build as: see run_user.h. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli/run_user.h"

/* A decimal id; ids above INT_MAX and (uid_t)-1 are refused (-1 means "unchanged" to
 * setresuid). */
static int run_user__parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end || *out > INT_MAX)
		return -EINVAL;
	return 0;
}

static int run_user__groups(struct run_user *u, char *err, size_t errlen)
{
	int n = RUN_USER_MAX_GROUPS;

	u->n_groups = 0;
	if (!u->name[0])
		return 0; /* no passwd entry: no group database entries to take */
	if (getgrouplist(u->name, u->gid, u->groups, &n) < 0) {
		snprintf(err, errlen, "user '%s' is in more than %d groups", u->name,
			 RUN_USER_MAX_GROUPS);
		return -EINVAL;
	}
	u->n_groups = (size_t)n;
	return 0;
}

static void run_user__from_passwd(struct run_user *u, const struct passwd *pw)
{
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir ? pw->pw_dir : "");
}

static int run_user__group(const char *g, gid_t *gid, char *err, size_t errlen)
{
	unsigned long id;
	struct group *gr;

	if (run_user__parse_id(g, &id) == 0) {
		*gid = (gid_t)id;
		return 0;
	}
	errno = 0;
	gr = getgrnam(g);
	if (!gr) {
		snprintf(err, errlen, "no such group '%s'", g);
		return -EINVAL;
	}
	*gid = gr->gr_gid;
	return 0;
}

static int run_user__from_spec(const char *spec, struct run_user *u, char *err, size_t errlen)
{
	char user[128];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw;
	unsigned long id;
	int e;

	if (!ulen || ulen >= sizeof(user) || (colon && !colon[1])) {
		snprintf(err, errlen, "--user needs USER or USER:GROUP, not '%s'", spec);
		return -EINVAL;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	snprintf(u->source, sizeof(u->source), "--user");
	if (run_user__parse_id(user, &id) == 0) {
		u->uid = (uid_t)id;
		pw = getpwuid(u->uid);
	} else {
		pw = getpwnam(user);
		if (!pw) {
			snprintf(err, errlen, "no such user '%s'", user);
			return -EINVAL;
		}
		u->uid = pw->pw_uid;
	}
	if (pw)
		run_user__from_passwd(u, pw);
	if (colon) {
		e = run_user__group(colon + 1, &u->gid, err, errlen);
		if (e)
			return e;
	} else if (pw) {
		u->gid = pw->pw_gid;
	} else {
		snprintf(err, errlen, "uid %s has no passwd entry: give its group too (--user %s:GID)",
			 user, user);
		return -EINVAL;
	}
	return run_user__groups(u, err, errlen);
}

/* sudo's own record of who called it: numbers, as sudo writes them. */
static int run_user__from_sudo(struct run_user *u, char *err, size_t errlen)
{
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	struct passwd *pw;
	unsigned long uid, gid;

	if (!su)
		return 0;
	if (run_user__parse_id(su, &uid) || !sg || run_user__parse_id(sg, &gid)) {
		snprintf(err, errlen, "SUDO_UID/SUDO_GID ('%s'/'%s') are not numeric ids: give --user",
			 su, sg ? sg : "");
		return -EINVAL;
	}
	snprintf(u->source, sizeof(u->source), "SUDO_UID");
	u->uid = (uid_t)uid;
	u->gid = (gid_t)gid;
	pw = getpwuid(u->uid);
	if (pw)
		run_user__from_passwd(u, pw);
	u->drop = true;
	return run_user__groups(u, err, errlen);
}

int run_user__resolve(const char *spec, struct run_user *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (!spec)
		return run_user__from_sudo(u, err, errlen);
	u->drop = true;
	return run_user__from_spec(spec, u, err, errlen);
}

bool run_user__is_root(const struct run_user *u)
{
	return u->drop ? u->uid == 0 : geteuid() == 0;
}

int run_user__enter(const struct run_user *u)
{
	if (!u->drop)
		return 0;
	if (setgroups(u->n_groups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
