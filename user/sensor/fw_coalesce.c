#include "sensor/fw_coalesce.h"

#include <string.h>

static size_t slot_of(uint64_t serial, pid_t pid)
{
	return (size_t)((serial * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uint32_t)pid) &
	       (FW_COALESCE_SLOTS - 1);
}

static struct fw_coal *find(struct fw_coalesce *c, uint64_t serial, pid_t pid)
{
	size_t s = slot_of(serial, pid), n;

	for (n = 0; n < FW_COALESCE_SLOTS; n++, s = (s + 1) & (FW_COALESCE_SLOTS - 1)) {
		struct fw_coal *e = &c->slot[s];

		if (!e->serial && !e->tomb)
			return NULL;
		if (e->serial == serial && e->pid == pid)
			return e;
	}
	return NULL;
}

void fw_coalesce__clear(struct fw_coalesce *c)
{
	memset(c->slot, 0, sizeof(c->slot));
	c->used = 0;
}

bool fw_coalesce__first_write(struct fw_coalesce *c, uint64_t serial, pid_t pid)
{
	size_t s;

	if (find(c, serial, pid))
		return false;
	/* Full (tombstones count: they lengthen every probe): start again. */
	if (c->used + 1 > FW_COALESCE_SLOTS * 3 / 4)
		fw_coalesce__clear(c);
	for (s = slot_of(serial, pid); c->slot[s].serial; s = (s + 1) & (FW_COALESCE_SLOTS - 1))
		;
	if (!c->slot[s].tomb)
		c->used++;
	c->slot[s] = (struct fw_coal){ .serial = serial, .pid = pid };
	return true;
}

bool fw_coalesce__close(struct fw_coalesce *c, uint64_t serial, pid_t pid)
{
	struct fw_coal *e = find(c, serial, pid);

	if (!e)
		return false;
	e->serial = 0;
	e->tomb = true;
	return true;
}
