/* Build roots' cgroups: see rootcg.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "base/log.h"
#include "sensor/rootcg.h"
#include "sensor_abi.h"

struct rootcg_entry {
	char *path; /* a copy: a reload frees the policy it came from */
	uint64_t mask; /* the build_roots entries naming it */
	uint64_t id; /* last resolved; 0: missing */
	int state; /* 0 never synced, 1 present, -1 missing */
};

struct rootcg {
	uint32_t gen;
	size_t n;
	struct rootcg_entry e[];
};

void rootcg__free(struct rootcg *rc)
{
	if (!rc)
		return;
	for (size_t i = 0; i < rc->n; i++)
		free(rc->e[i].path);
	free(rc);
}

int rootcg__new(const struct bw_policy *p, uint32_t gen, struct rootcg **out)
{
	struct rootcg *rc = calloc(1, sizeof(*rc) + p->n_build_roots * sizeof(rc->e[0]));

	*out = NULL;
	if (!rc)
		return -ENOMEM;
	rc->gen = gen;
	for (size_t i = 0; i < p->n_build_roots && i < 64; i++) {
		const char *path = p->build_roots[i].cgroup;
		size_t j;

		if (!path)
			continue;
		for (j = 0; j < rc->n && strcmp(rc->e[j].path, path); j++)
			;
		if (j == rc->n) {
			rc->e[j].path = strdup(path);
			if (!rc->e[j].path) {
				rootcg__free(rc);
				return -ENOMEM;
			}
			rc->n++;
		}
		rc->e[j].mask |= 1ull << i;
	}
	*out = rc;
	return 0;
}

int rootcg__id(int cgroot_fd, const char *path, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h;
	int mnt, fd, e = 0;

	*id = 0;
	if (path[0] != '/')
		return -EINVAL;
	/* O_NOFOLLOW on the last component and a directory: cgroupfs has no symlinks, so
	 * anything else is not the cgroup the policy names. */
	fd = openat(cgroot_fd, path + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The handle of a cgroup v2 directory is its 64-bit id (FILEID_KERNFS), the value
	 * bpf_get_current_ancestor_cgroup_id returns. */
	h.fh.handle_bytes = sizeof(h.buf) - sizeof(struct file_handle);
	if (name_to_handle_at(fd, "", &h.fh, &mnt, AT_EMPTY_PATH))
		e = -errno;
	else if (h.fh.handle_bytes != sizeof(*id))
		e = -EPROTO;
	else
		memcpy(id, h.fh.f_handle, sizeof(*id));
	close(fd);
	return e;
}

static void rootcg__say(struct rootcg_entry *en, uint64_t id, int err)
{
	int state = id ? 1 : -1;

	if (state == en->state && (state < 0 || id == en->id))
		return;
	if (id)
		log__line(stderr, "buildwarden: ", "build root cgroup '%s' is id %llu", en->path,
			  (unsigned long long)id);
	else
		log__line(stderr, "buildwarden: ",
			  "warning: build root cgroup '%s' cannot be used (%s): no process in it "
			  "becomes the build until it exists",
			  en->path, strerror(-err));
	en->state = state;
}

int rootcg__sync(struct rootcg *rc, int map_fd, int cgroot_fd)
{
	struct bw_cgroup_key key, next;
	void *prev = NULL;

	for (size_t i = 0; i < rc->n; i++) {
		uint64_t id = 0;
		int err = cgroot_fd >= 0 ? rootcg__id(cgroot_fd, rc->e[i].path, &id) : -EBADF;

		if (err)
			id = 0;
		rootcg__say(&rc->e[i], id, err);
		rc->e[i].id = id;
	}
	/* First drop what no longer holds (a restarted service's old id), then write. */
	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		bool keep = next.gen != rc->gen;

		for (size_t i = 0; !keep && i < rc->n; i++)
			keep = rc->e[i].id && rc->e[i].id == next.id;
		key = next;
		if (!keep && bpf_map_delete_elem(map_fd, &key) == 0) {
			prev = NULL;
			continue;
		}
		prev = &key;
	}
	for (size_t i = 0; i < rc->n; i++) {
		uint64_t mask = 0;

		if (!rc->e[i].id)
			continue;
		/* Two paths can name one cgroup (the policy wrote it twice): one key, both bits. */
		for (size_t j = 0; j < rc->n; j++)
			if (rc->e[j].id == rc->e[i].id)
				mask |= rc->e[j].mask;
		memset(&key, 0, sizeof(key));
		key.id = rc->e[i].id;
		key.gen = rc->gen;
		if (bpf_map_update_elem(map_fd, &key, &mask, BPF_ANY))
			return -errno;
	}
	return 0;
}

void rootcg__purge(int map_fd, uint32_t gen)
{
	struct bw_cgroup_key key, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		key = next;
		if (key.gen != gen && bpf_map_delete_elem(map_fd, &key) == 0) {
			prev = NULL;
			continue;
		}
		prev = &key;
	}
}
