/* Inside the agent part: the running agent's state, shared by its lifecycle
 * (agent.c) and its record dispatch (dispatch.c). */
#ifndef BUILDWARDEN_AGENT_INT_H
#define BUILDWARDEN_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/agent.h"
#include "agent/emitter.h"
#include "agent/enroll.h"
#include "agent/loop.h"
#include "agent/reload.h"
#include "agent/resolver.h"
#include "agent/tally.h"
#include "buildwarden.pb-c.h"
#include "pipeline/event_build.h"
#include "pipeline/arena.h"
#include "pipeline/linknames.h"
#include "pipeline/procinfo.h"
#include "sensor/execguard.h"
#include "sensor/fanwatch.h"
#include "sensor/features.h"
#include "sensor/loader.h"
#include "sensor/permwatch.h"
#include "sensor/procmem.h"
#include "transport/sink_collector.h"
#include "transport/sink_file.h"

#define MAX_LAYERS 32 /* "guard: layer" lines (features__layers, and run_emit__layers' own) */

struct agent {
	struct agent_opts opts;
	char *const *argv; /* the build's; NULL in agent mode */
	struct policy_state ps;
	struct features feat;
	struct sensor *sensor;
	struct procmem *pm;
	struct execguard *xg; /* enforce mode with exec.deny trees only (exec_guard.c) */
	struct procinfo *pi;
	struct linknames *links;
	struct arena *arena;
	struct emitter em;
	int file_sink; /* index in em; -1: no events file */
	struct sink_file *events_file; /* also in em; kept to reopen it on SIGHUP */
	struct sink_collector *collector; /* also in em; kept for its drain and stats */
	struct tally tally;
	struct loop *loop;
	struct run_guard *guard; /* run only: kills the build if the agent dies */
	struct enroll_server *enroll; /* agent only, with --enroll-socket */
	int64_t last_stats_ns;
	int64_t last_rootcg_ns; /* agent mode: last re-resolution of build root cgroups */
	bool guard_enforce; /* the mode the kernel was last given (write_guard.c) */
	struct permwatch *perm; /* enforce mode: answers ps.fw's permission group (perm.c) */
	uint64_t perm_lost_before; /* refusals lost by permwatches already stopped */
	struct resolver *resolver; /* the policy names hosts in network.allow (resolver.h) */
};

/* dispatch.c: emits ev (emitter.h) and counts it. */
void agent__emit(struct agent *a, Buildwarden__V1__Event *ev, bool violation, uint64_t ktime);

/* The sensor's record callback (sensor_record_fn). */
int dispatch__record(void *ctx, const void *data, size_t size);
/* fanwatch's callback (fw_event_cb). */
void dispatch__file_change(const struct fw_event *fe, void *ctx);
/* procmem's callback (procmem_cb). */
void dispatch__proc_mem_write(pid_t writer, pid_t target, void *ctx);

/* dispatch.c: an event context on a fresh arena */
struct event_ctx dispatch__ctx(struct agent *a);

/* write_guard.c: the kernel's protected set follows fw's marked files in enforce mode
 * (emptied otherwise); detach before fw is freed or replaced. */
void write_guard__attach(struct agent *a, struct fanwatch *fw, bool enforce);
void write_guard__detach(struct fanwatch *fw);
/* A BW_EV_WRITE_KILL record -> a File event, verdict KILLED. */
void write_guard__record(struct agent *a, const struct bw_write_kill_event *r);

/* lsm_deny.c: a BW_EV_LSM_DENY record -> a File event, verdict DENIED. */
void lsm_deny__record(struct agent *a, const struct bw_lsm_deny_event *r);

/* exec_guard.c: the #! script guard follows the policy and mode (started when first
 * needed, in the loop; threads inherit the loop's blocked signals): 0 or -errno */
int exec_guard__apply(struct agent *a, const struct bw_policy *p, bool enforce);
/* its refusals still queued -> events */
void exec_guard__drain(struct agent *a);
/* refusals whose report was lost */
uint64_t exec_guard__lost(const struct agent *a);
/* perm.c: enforce mode's permission answers on fw's group (none: no-op); stop before
 * fw is freed. Refusals become File events with the verdict DENIED. */
void perm__start(struct agent *a, struct fanwatch *fw);
void perm__stop(struct agent *a);
void perm__on_ready(void *ctx);
/* the agent's own removal of a name a refused create made: not a change to report */
bool perm__is_own_cleanup(const struct agent *a, pid_t pid);
/* a CREATE whose name a refused open made (gone, or still empty): not a landed change */
bool perm__refused_create(const struct agent *a, const char *path);

/* sources.c */
int sources__add(struct agent *a); /* into a->loop: 0 or -errno */
int sources__add_enroll(struct agent *a); /* a->enroll into a->loop: 0 or -errno */
/* one pass of the loop, then the periodic work; the signals seen (loop.h) */
unsigned sources__poll(struct agent *a);
/* everything still queued, before the run ends */
void sources__drain_all(struct agent *a);
/* a watcher of p's protected trees, NULL when it has none (reload_ops.watch) */
int sources__watch_trees(void *ctx, const struct bw_policy *p, struct fanwatch **out);
void sources__reload(struct agent *a);

/* run_emit.c */
/* the "guards on this host" lines: the features', then what the watchers set up */
size_t run_emit__layers(const struct agent *a, const char **lines, size_t max);
void run_emit__run_start(struct agent *a);
void run_emit__stats(struct agent *a);
/* returns what was lost on the way to the agent (RunEnd.drops) */
uint64_t run_emit__run_end(struct agent *a, int exit_status);
/* what was lost so far (losses.h): after the drain, the run's final word */
struct run_losses;
void run_emit__losses(struct agent *a, struct run_losses *out);

#endif /* BUILDWARDEN_AGENT_INT_H */
