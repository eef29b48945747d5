/* Policy files: reading one (bounded) and printing what was wrong with it. Apart from
 * policy.c so the parser proper stays pure: it never touches a file descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fdio.h"
#include "policy/policy.h"

/* One byte more than the parser accepts, so that it is the parser that reports an
 * oversized file, with the same message as for an oversized buffer. */
#define POLICY_FILE_READ_MAX ((1u << 20) + 1)

static void file__diag(struct bw_diags *d, const char *what, const char *path, int err)
{
	memset(d, 0, sizeof(*d));
	d->n = 1;
	d->n_errors = 1;
	snprintf(d->items[0].msg, sizeof(d->items[0].msg), "%s '%s': %s", what, path,
		 strerror(err));
}

int policy__load_file(const char *path, unsigned flags, struct bw_policy **out,
		      struct bw_diags *diags)
{
	return policy__load_file_bytes(path, flags, out, diags, NULL, NULL);
}

int policy__load_file_bytes(const char *path, unsigned flags, struct bw_policy **out,
			    struct bw_diags *diags, char **bytes, size_t *nbytes)
{
	struct bw_policy_opts opts = { .flags = flags, .use_env = true };

	return policy__load_file_opts(path, &opts, out, diags, bytes, nbytes);
}

int policy__load_file_opts(const char *path, const struct bw_policy_opts *opts,
			   struct bw_policy **out, struct bw_diags *diags, char **bytes,
			   size_t *nbytes)
{
	struct bw_policy_opts env_only = { .use_env = true };
	struct bw_diags local;
	char *buf = NULL, *real = NULL, *dir;
	size_t len = 0;
	ssize_t r;
	struct stat st;
	int fd, err;

	if (!diags)
		diags = &local;
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		file__diag(diags, "cannot open", path, -err);
		return err;
	}
	/* A FIFO or device would have no end or no base directory worth trusting. */
	if (fstat(fd, &st)) {
		err = -errno;
		file__diag(diags, "cannot read", path, -err);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		memset(diags, 0, sizeof(*diags));
		diags->n = 1;
		diags->n_errors = 1;
		snprintf(diags->items[0].msg, sizeof(diags->items[0].msg),
			 "cannot read '%s': not a regular file", path);
		goto cleanup;
	}
	buf = malloc(POLICY_FILE_READ_MAX);
	if (!buf) {
		err = -ENOMEM;
		file__diag(diags, "cannot read", path, -err);
		goto cleanup;
	}
	r = fdio__read_full(fd, buf, POLICY_FILE_READ_MAX);
	if (r < 0) {
		err = (int)r;
		file__diag(diags, "cannot read", path, -err);
		goto cleanup;
	}
	len = (size_t)r;
	real = realpath(path, NULL);
	if (!real) {
		err = -errno;
		file__diag(diags, "cannot resolve", path, -err);
		goto cleanup;
	}
	dir = dirname(real);
	err = policy__parse_opts(buf, len, path, dir, opts ? opts : &env_only, out, diags);
	if (!err && bytes) {
		/* the very buffer parsed: what a hash of it vouches for is what was loaded */
		*bytes = buf;
		*nbytes = len;
		buf = NULL;
	}
cleanup:
	free(real);
	free(buf);
	close(fd);
	return err;
}

void policy__print_diags(const struct bw_diags *diags, const char *name, void *stdio_file)
{
	FILE *f = stdio_file;

	if (!name)
		name = "<policy>";
	for (size_t i = 0; i < diags->n && i < BW_POLICY_MAX_DIAGS; i++) {
		const struct bw_diag *g = &diags->items[i];

		const char *sev = g->warning ? "warning" : "error";

		if (g->line)
			fprintf(f, "%s:%u:%u: %s: %s\n", name, g->line, g->col, sev, g->msg);
		else
			fprintf(f, "%s: %s: %s\n", name, sev, g->msg);
	}
	if (diags->dropped)
		fprintf(f, "%s: %zu more problem%s not shown\n", name, diags->dropped,
			diags->dropped == 1 ? "" : "s");
}
