/* File handles: how fanotify names an object (fsid + handle). Taken when an object is
 * marked, opened again (open_by_handle_at) when the table cannot answer, through a
 * descriptor kept per filesystem under the trees. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sensor/fw_private.h"

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200 /* linux ≥6.5: the handle fanotify reports, no export needed */
#endif

int fw_handle__get(int dfd, const char *name, struct fw_fh *h, int *mnt_id)
{
	int mnt;

	if (!mnt_id)
		mnt_id = &mnt;
	h->fh.handle_bytes = FANOTIFY_PARSE_MAX_HANDLE;
	if (name_to_handle_at(dfd, name, &h->fh, mnt_id,
			      AT_HANDLE_FID | (*name ? 0 : AT_EMPTY_PATH)) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernel before 6.5: the export handle is the same bytes for the filesystems
	 * that support both. */
	h->fh.handle_bytes = FANOTIFY_PARSE_MAX_HANDLE;
	if (name_to_handle_at(dfd, name, &h->fh, mnt_id, *name ? 0 : AT_EMPTY_PATH))
		return -errno;
	return 0;
}

/* The same packing as fanotify_parse: val[0] low, val[1] high. */
static uint64_t pack_fsid(const fsid_t *f)
{
	int val[2];

	memcpy(val, f, sizeof(val));
	return (uint64_t)(uint32_t)val[0] | (uint64_t)(uint32_t)val[1] << 32;
}

int fw_handle__fs_of(struct fanwatch *fw, int dfd, dev_t dev, uint64_t *fsid)
{
	struct statfs sfs;
	size_t i;

	for (i = 0; i < fw->n_mnts; i++) {
		if (fw->mnts[i].dev == dev) {
			*fsid = fw->mnts[i].fsid;
			return 0;
		}
	}
	if (fw->n_mnts == FW_MAX_FS)
		return -ENOSPC;
	if (fstatfs(dfd, &sfs))
		return -errno;
	fw->mnts[fw->n_mnts].dev = dev;
	fw->mnts[fw->n_mnts].fsid = pack_fsid(&sfs.f_fsid);
	fw->mnts[fw->n_mnts].fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fw->mnts[fw->n_mnts].fd < 0)
		return -errno;
	*fsid = fw->mnts[fw->n_mnts++].fsid;
	return 0;
}

static int mount_fd(const struct fanwatch *fw, uint64_t fsid)
{
	size_t i;

	for (i = 0; i < fw->n_mnts; i++)
		if (fw->mnts[i].fsid == fsid)
			return fw->mnts[i].fd;
	return -1;
}

int fw_handle__open(const struct fanwatch *fw, const struct fw_key *k)
{
	struct fw_fh h;
	int mfd = mount_fd(fw, k->fsid);

	if (mfd < 0 || k->len > FANOTIFY_PARSE_MAX_HANDLE)
		return -ENODEV;
	h.fh.handle_bytes = k->len;
	h.fh.handle_type = k->type;
	memcpy(h.fh.f_handle, k->h, k->len);
	mfd = open_by_handle_at(mfd, &h.fh, O_PATH | O_CLOEXEC);
	return mfd < 0 ? -errno : mfd;
}

void fw_handle__close_all(struct fanwatch *fw)
{
	size_t i;

	for (i = 0; i < fw->n_mnts; i++)
		close(fw->mnts[i].fd);
	fw->n_mnts = 0;
}
