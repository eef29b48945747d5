/* Tally and summary: see tally.h. */
#include <string.h>

#include "agent/tally.h"
#include "sensor/permwatch.h"

static void tally__rule(struct tally *t, const char *rule)
{
	for (size_t i = 0; i < t->n_rules; i++) {
		if (strcmp(t->rules[i].rule, rule) == 0) {
			t->rules[i].n++;
			return;
		}
	}
	/* Past the table's end the rule is still in the violation count, only not named. */
	if (t->n_rules < TALLY_MAX_RULES) {
		snprintf(t->rules[t->n_rules].rule, sizeof(t->rules[0].rule), "%s", rule);
		t->rules[t->n_rules++].n = 1;
	}
}

/* A name counts once while the table has room; past it every TAINTED name counts. */
static void tally__taint(struct tally *t, const char *path)
{
	if (!path || !*path)
		return;
	for (size_t i = 0; i < t->n_tainted_paths; i++)
		if (strcmp(t->tainted_paths[i], path) == 0)
			return;
	t->tainted++;
	if (t->n_tainted_paths < TALLY_MAX_TAINTED)
		snprintf(t->tainted_paths[t->n_tainted_paths++], sizeof(t->tainted_paths[0]), "%s",
			 path);
}

void tally__event(struct tally *t, const Buildwarden__V1__Event *ev, bool violation)
{
	if (ev->verdict && ev->verdict->action == BUILDWARDEN__V1__ACTION__TAINTED) {
		if (ev->file) {
			tally__taint(t, ev->file->path);
			tally__taint(t, ev->file->new_path);
		}
		if (ev->verdict->actor_killed)
			t->actors_killed++;
	}
	t->events++;
	if (violation) {
		t->violations++;
		if (ev->verdict && ev->verdict->rule)
			tally__rule(t, ev->verdict->rule);
	}
	if (ev->process && !ev->process->attributed)
		t->unattributed++;
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

void tally__print_summary(const struct tally *t, const struct tally_summary *s, FILE *out)
{
	flockfile(out);
	fprintf(out, "buildwarden: %s (run %s, mode %s)\n", s->what, s->run_id,
		s->enforce ? "enforce" : "audit");
	fprintf(out, "  events: %llu (exec %llu, file %llu, connect %llu, process %llu)\n",
		ull(t->events), ull(t->by_kind[TALLY_EXEC]), ull(t->by_kind[TALLY_FILE]),
		ull(t->by_kind[TALLY_CONNECT]), ull(t->by_kind[TALLY_PROCESS]));
	/* the agent's own threads only: what the sensor's user space cost this host */
	if (s->have_cpu)
		fprintf(out, "  agent cpu: %.2f s user, %.2f s system\n", s->cpu_user_s,
			s->cpu_system_s);
	fprintf(out, "  violations: %llu\n", ull(t->violations));
	for (size_t i = 0; i < t->n_rules; i++)
		fprintf(out, "    %6llu  %s\n", ull(t->rules[i].n), t->rules[i].rule);
	if (t->tainted) {
		fprintf(out, "  tainted: %llu files changed by a process outside the build "
			     "(the change landed: do not trust them); %llu actors killed\n",
			ull(t->tainted), ull(t->actors_killed));
		for (size_t i = 0; i < t->n_tainted_paths; i++)
			fprintf(out, "    %s\n", t->tainted_paths[i]);
		if (t->tainted > t->n_tainted_paths)
			fprintf(out, "    ... and %llu more (the events name them)\n",
				ull(t->tainted - t->n_tainted_paths));
	}
	fprintf(out, "  lost: %llu (kernel ring buffer and fanotify queue), unattributed: %llu, "
		     "bad records: %llu, events not written: %llu\n",
		ull(s->drops), ull(t->unattributed), ull(t->bad_records), ull(s->not_written));
	if (t->enrollments || t->enrollments_refused)
		fprintf(out, "  enrollments: %llu build roots made, %llu requests refused\n",
			ull(t->enrollments), ull(t->enrollments_refused));
	if (s->not_watched)
		fprintf(out, "  not watched: %llu objects under the protected trees\n",
			ull(s->not_watched));
	if (s->perm) {
		fprintf(out,
			"  permission answers: %llu asked (%llu opens by the build, %llu other opens, "
			"%llu reads/writes, %llu truncates), %llu refused (%llu by the fail-safe, %llu "
			"with no recorded intent); decision p50 %.0f us, p99 %.0f us, max %.0f us; ",
			ull(s->perm->asked), ull(s->perm->asked_open_build),
			ull(s->perm->asked_open_other), ull(s->perm->asked_access),
			ull(s->perm->asked_truncate), ull(s->perm->denied), ull(s->perm->fail_safe),
			ull(s->perm->no_intent), s->perm->answer_p50_ns / 1e3,
			s->perm->answer_p99_ns / 1e3, s->perm->answer_max_ns / 1e3);
		/* Only an open whose thread recorded its intent carries its entry time; the
		 * build's own opens are answered by process id, without one. */
		if (s->perm->entry_n)
			fprintf(out, "open's entry to answer p50 %.0f us, p99 %.0f us, max %.0f us\n",
				s->perm->entry_p50_ns / 1e3, s->perm->entry_p99_ns / 1e3,
				s->perm->entry_max_ns / 1e3);
		else
			fprintf(out, "open's entry to answer: none timed (no open with a recorded "
				     "intent)\n");
	}
	if (s->exec_guard)
		fprintf(out, "  exec guard: %llu exec-opens asked (once per ELF file, every script)\n",
			ull(s->exec_guard_asked));
	if (s->collector && s->collector_stats) {
		const struct sink_collector_stats *cs = s->collector_stats;

		fprintf(out,
			"  collector %s: %llu spooled, %llu acknowledged, %llu dropped (spool full), "
			"%llu left in the spool for the next start%s%s\n",
			s->collector, ull(cs->spooled), ull(cs->acked),
			ull(cs->spool_full_drops + cs->other_drops), ull(cs->unacked),
			cs->last_error[0] ? "; last error: " : "", cs->last_error);
		if (cs->foreign_runs)
			fprintf(out, "  spool: %llu run directories refused (not this agent's: another owner, "
				"or not mode 0700); not uploaded\n", ull(cs->foreign_runs));
	}
	fprintf(out, "  guards on this host:\n");
	for (size_t i = 0; i < s->n_layers; i++)
		fprintf(out, "    %s\n", s->layers[i]);
	/* last, next to the exit line: why the run fails though it may have no violation */
	if (s->losses && losses__any(s->losses)) {
		char why[512];

		losses__format(s->losses, why, sizeof(why));
		fprintf(out, "  run incomplete: %s\n", why);
	}
	funlockfile(out);
}
