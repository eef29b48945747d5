/* The agent's event sinks behind one interface, so it can feed several at once (the
 * events file and the collector) without knowing which is which. Each kind of sink
 * has a constructor that returns its struct sink (sink_file__sink,
 * sink_collector__sink). */
#ifndef BUILDWARDEN_TRANSPORT_SINK_H
#define BUILDWARDEN_TRANSPORT_SINK_H

#include "buildwarden.pb-c.h"

struct sink_ops {
	/* 0 or -errno; the event is not kept after the call returns */
	int (*write)(void *ctx, const Buildwarden__V1__Event *ev);
	/* push buffered events to the OS / the peer; 0 or -errno */
	int (*flush)(void *ctx);
	/* release ctx; call flush first to learn whether the tail made it out */
	void (*close)(void *ctx);
};

struct sink {
	const struct sink_ops *ops;
	void *ctx;
};

static inline int sink__write(struct sink *s, const Buildwarden__V1__Event *ev)
{
	return s->ops->write(s->ctx, ev);
}

static inline int sink__flush(struct sink *s)
{
	return s->ops->flush(s->ctx);
}

static inline void sink__close(struct sink *s)
{
	if (s->ops)
		s->ops->close(s->ctx);
	s->ops = NULL;
	s->ctx = NULL;
}

#endif /* BUILDWARDEN_TRANSPORT_SINK_H */
