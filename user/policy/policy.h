/* YAML policy -> a checked, immutable struct bw_policy. Links nothing of ours and
 * no kernel library, so it runs (and is fuzzed) anywhere. */
#ifndef BUILDWARDEN_POLICY_H
#define BUILDWARDEN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BW_POLICY_MAX_DIAGS 64
#define BW_POLICY_MAX_TREES 64 /* protected trees: one bit each in the kernel's masks */
/* network rules as kernel entries, one per port of a range: half of net_rules, whose
 * other half holds the previous policy during a reload */
#define BW_POLICY_MAX_NET_ENTRIES 32768

enum bw_mode { BW_MODE_AUDIT = 0, BW_MODE_ENFORCE = 1 };
enum bw_scope { BW_SCOPE_BUILD = 0, BW_SCOPE_HOST = 1 };

struct bw_exe_match {
	char *exe; /* absolute path as written, after resolving symlinks when fs checks are on */
	bool descendants;
	uint64_t dev; /* st_dev / st_ino of exe at load time; 0/0 when fs checks are off */
	uint64_t ino;
	unsigned line, col;
	/* writers only: conditions besides the executable (docs/policy.md) */
	bool has_uid;       /* `uid: N` or `user: NAME`: the process's real uid must be uid */
	uint32_t uid;
	char *parent;       /* `parent: /abs/exe`: the parent process must run this file */
	uint64_t parent_dev, parent_ino; /* as dev/ino */
	char *name; /* `name:` as written, or NULL: what events and `query --rule` show */
};

/* A build root (agent mode): a process in cgroup (or below it) that execs exe becomes
 * the build. The executable alone is not enough: any local process can exec it. */
struct bw_build_root {
	char *exe; /* absolute path, resolved when fs checks are on */
	uint64_t dev, ino; /* of exe at load time; 0/0 when fs checks are off */
	/* path under the cgroup v2 root, "/system.slice/x.service": normalized (no "//",
	 * no "." or "..", no trailing "/"), never "/" itself; resolved by the sensor,
	 * since a service's cgroup exists only while the service runs */
	char *cgroup;
	unsigned line, col; /* of exe */
	unsigned cg_line, cg_col;
	char *name; /* optional `name:` */
};

struct bw_protect {
	char *path; /* absolute and resolved (realpath) when fs checks are on */
	struct bw_exe_match *writers;
	size_t n_writers;
	uint64_t dev, ino;
	unsigned line, col;
	char *name; /* optional `name:` */
};

/* An exec.deny or exec.allow tree: written as a path, or as {path, name}. */
struct bw_tree {
	char *path; /* absolute, resolved */
	uint64_t dev, ino;
	unsigned line, col;
	char *name; /* optional `name:` */
};

struct bw_net_rule {
	uint8_t addr[16]; /* IPv4 mapped into ::ffff:a.b.c.d */
	unsigned prefix_len; /* in the 128-bit space: an IPv4 /8 is 96 + 8 = 104 */
	/* ports port..port_hi; port 0 = any port. A list ("80,443") is one entry of
	 * bw_policy per element, all with the same text, name and position. */
	uint16_t port;
	uint16_t port_hi;
	bool is_v4;
	char *text; /* the rule as written, for events and summaries */
	char *name; /* optional `name:` ({to: ..., name: ...}) */
	unsigned line, col;
};

/* A name rule of network.allow: "github.com:443", "*.githubusercontent.com:443". */
#define BW_HOST_NAME_MAX 253
#define BW_HOST_LABEL_MAX 63
struct bw_host_rule {
	char *name; /* lowercase, without the "*." of a wildcard */
	bool wildcard; /* matches names below name, at any depth, not name itself */
	uint16_t port; /* 0 = any port */
	char *text; /* the rule as written, for events and summaries */
	char *rule_name; /* optional `name:` ({to: ..., name: ...}); `name` is the host's */
	unsigned line, col;
};

struct bw_policy {
	unsigned version;
	enum bw_mode mode;
	struct bw_protect *protect;
	size_t n_protect;
	struct bw_build_root *build_roots;
	size_t n_build_roots;
	enum bw_scope exec_scope;
	struct bw_tree *exec_deny;
	size_t n_exec_deny;
	/* exec.allow: subtrees of deny trees from which execs are allowed again */
	struct bw_tree *exec_allow;
	size_t n_exec_allow;
	enum bw_scope net_scope;
	bool net_default_deny;
	struct bw_net_rule *net_allow;
	size_t n_net_allow;
	struct bw_net_rule *net_deny;
	size_t n_net_deny;
	/* network.allow's name rules (hostrule.c), apart from the address rules */
	struct bw_host_rule *net_allow_names;
	size_t n_net_allow_names;
	char *source; /* the file name diagnostics and events name */
};

struct bw_diag {
	unsigned line, col; /* 1-based; 0 when the problem has no position */
	bool warning; /* legal but dangerous or dead: the policy still loads */
	char msg[240];
};

struct bw_diags {
	struct bw_diag items[BW_POLICY_MAX_DIAGS];
	size_t n;
	size_t dropped; /* problems past BW_POLICY_MAX_DIAGS */
	size_t n_errors; /* errors among all problems found, dropped ones included */
};

/* Don't touch the file system: no realpath, no stat, no existence checks. For the
 * fuzzer and unit tests of pure syntax. */
#define BW_POLICY_NO_FS (1u << 0)

/* What a parse may use besides the text: flags, and the values of ${VAR} (and ~, from
 * HOME) in paths. vars ("NAME=VALUE", `--set`) are looked up first, then the
 * environment when use_env is set. */
struct bw_policy_opts {
	unsigned flags;
	const char *const *vars;
	size_t n_vars;
	bool use_env;
};

/* Parses and checks a policy held in memory. name is used in diagnostics, base_dir
 * resolves relative paths. Returns 0 and sets *out, or -EINVAL with every problem
 * found in diags (or another -errno on allocation failure). */
int policy__parse(const char *buf, size_t len, const char *name, const char *base_dir,
		  unsigned flags, struct bw_policy **out, struct bw_diags *diags);

/* policy__parse with options (variables); warnings (diags items with .warning) do not
 * make it fail. policy__parse is this with { flags } alone. */
int policy__parse_opts(const char *buf, size_t len, const char *name, const char *base_dir,
		       const struct bw_policy_opts *opts, struct bw_policy **out,
		       struct bw_diags *diags);

/* Reads path and parses it with base_dir = its directory. */
int policy__load_file(const char *path, unsigned flags, struct bw_policy **out,
		      struct bw_diags *diags);
/* The same, and on success hands over the bytes parsed (*bytes, *nbytes; the caller
 * frees *bytes) when bytes is not NULL: the file is read once, so a hash of these bytes
 * is the hash of the policy loaded, whatever replaces the file afterwards. */
int policy__load_file_bytes(const char *path, unsigned flags, struct bw_policy **out,
			    struct bw_diags *diags, char **bytes, size_t *nbytes);
/* The same with options; opts NULL is { flags 0, the environment }. */
int policy__load_file_opts(const char *path, const struct bw_policy_opts *opts,
			   struct bw_policy **out, struct bw_diags *diags, char **bytes,
			   size_t *nbytes);

/* Writes one "name:line:col: error: message" (or "warning: ") line per diagnostic. */
void policy__print_diags(const struct bw_diags *diags, const char *name, void *stdio_file);

void policy__free(struct bw_policy *policy);

/* Longest-prefix match of a destination against the rules, as the kernel does:
 * returns 1 allow, 0 deny, and sets *rule to the matching rule's text or NULL for
 * the default. For userspace checks and tests. addr is 16 bytes (v4-mapped). */
int policy__net_verdict(const struct bw_policy *policy, const uint8_t addr[16], uint16_t port,
			const char **rule);

/* Parses one network rule as written in the policy ("10.0.0.0/8:443", "[::1]:53", ...)
 * into *rule; rule->text is left NULL and line/col 0 for the caller to fill. Returns 0,
 * or -EINVAL with a git-style message in err. Public so that the unit tests check
 * each rule form alone, apart from a whole policy. */
int policy__parse_net_rule(const char *text, struct bw_net_rule *rule, char *err, size_t errlen);

/* Name rules (hostrule.c). True when text is written as a name rather than an
 * address: "github.com:443", "*.example.com", not "10.0.0.1:443" nor "::1". */
bool policy__is_host_rule(const char *text);
/* Parses one name rule into *rule (rule->name allocated; text, line and col left for the
 * caller). 0, or -EINVAL with a git-style message in err (-ENOMEM). */
int policy__parse_host_rule(const char *text, struct bw_host_rule *rule, char *err,
			    size_t errlen);
/* Does name (a DNS owner name, with or without its final dot; any case) match rule? */
bool policy__host_match(const struct bw_host_rule *rule, const char *name);
/* The index of the first name rule of p matching name on port (rule's port 0: any), or
 * -1; *rule (if not NULL) gets its text. What the resolver asks of each answered name. */
int policy__host_verdict(const struct bw_policy *p, const char *name, uint16_t port,
			 const char **rule);

#endif
