/* Helpers used by every program: counters, config, ring buffer output. */
#ifndef BW_COMMON_BPF_H
#define BW_COMMON_BPF_H

#include "lib/maps.bpf.h"
#include <bpf/bpf_core_read.h>

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += 1;
}

static __always_inline const struct bw_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sensor_config, &zero);
}

/* Reserves a record of `size` bytes with its header filled; counts a drop on failure so
 * that a full ring buffer is reported, never silent. */
static __always_inline void *event_reserve(__u32 size, __u16 type)
{
	struct bw_event_hdr *hdr = bpf_ringbuf_reserve(&events, size, 0);

	if (!hdr) {
		count(BW_CNT_RINGBUF_DROPS);
		return NULL;
	}
	hdr->type = type;
	hdr->version = BW_ABI_VERSION;
	hdr->size = size;
	hdr->ktime = bpf_ktime_get_ns();
	return hdr;
}

/* Wake-ups are batched (the agent drains every 100 ms), except for what must be seen at
 * once and whenever the buffer is filling: a burst must not outrun a sleeping agent. */
static __always_inline void event_submit(void *e, bool urgent)
{
	bool wake = urgent || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > RINGBUF_WAKE_BYTES;

	bpf_ringbuf_submit(e, wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline struct bw_proc *proc_lookup(__u32 tgid)
{
	return bpf_map_lookup_elem(&proc_table, &tgid);
}

#endif
