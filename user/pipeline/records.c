#include "pipeline/records.h"

#include <errno.h>
#include <string.h>

int records__check(const void *data, size_t size)
{
	struct bw_event_hdr hdr;

	if (size < sizeof(hdr))
		return -EINVAL;
	memcpy(&hdr, data, sizeof(hdr));
	if (hdr.version != BW_ABI_VERSION || hdr.size != size)
		return -EINVAL;
	switch (hdr.type) {
	case BW_EV_EXEC: {
		const struct bw_exec_event *e = data;

		if (size != sizeof(*e) || e->filename_len > BW_FILENAME_LEN ||
		    e->args_len > BW_ARGS_LEN)
			return -EINVAL;
		return BW_EV_EXEC;
	}
	case BW_EV_CONNECT: {
		const struct bw_connect_event *e = data;

		if (size != sizeof(*e) || (e->family != 2 && e->family != 10))
			return -EINVAL;
		return BW_EV_CONNECT;
	}
	case BW_EV_LINK_NAME:
		return size == sizeof(struct bw_link_name_event) ? BW_EV_LINK_NAME : -EINVAL;
	case BW_EV_WRITE_KILL:
		return size == sizeof(struct bw_write_kill_event) ? BW_EV_WRITE_KILL : -EINVAL;
	case BW_EV_LSM_DENY: {
		const struct bw_lsm_deny_event *e = data;

		if (size != sizeof(*e) || e->op == 0 || e->op >= BW_LSM_OP_MAX)
			return -EINVAL;
		return BW_EV_LSM_DENY;
	}
	case BW_EV_PROC_ACCESS:
		return size == sizeof(struct bw_proc_access_event) ? BW_EV_PROC_ACCESS : -EINVAL;
	default:
		return -ENOTSUP;
	}
}
