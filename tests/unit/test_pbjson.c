// SPDX-License-Identifier: GPL-2.0
/* The proto3-JSON printer against exact golden strings: any change in names, order,
 * escaping or default handling is a change in `buildwarden decode` output that users'
 * scripts see, so it must show up here.
 *
 * With BW_FUZZ_CORPUS_DIR set, also writes the events below as framed seed files for
 * tests/fuzz/fuzz_frame (that is how tests/fuzz/corpus/fuzz_frame/ was made). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildwarden.pb-c.h"
#include "transport/frame.h"
#include "transport/pbjson.h"

/* protobuf-c fields are char *; the tests never write through them. */
#define S(lit) ((char *)(lit))

static char *to_json(const ProtobufCMessage *m)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	assert_int_equal(pbjson__print(f, m), 0);
	assert_int_equal(fclose(f), 0);
	return s;
}

static void assert_json(const ProtobufCMessage *m, const char *want)
{
	char *got = to_json(m);

	assert_string_equal(got, want);
	free(got);
}

/* Printing the unpacked wire form must give the same text as the in-memory form. */
static void assert_json_wire(const Buildwarden__V1__Event *ev, const char *want)
{
	size_t n = buildwarden__v1__event__get_packed_size(ev);
	uint8_t *buf = malloc(n ? n : 1);
	Buildwarden__V1__Event *back;

	assert_non_null(buf);
	buildwarden__v1__event__pack(ev, buf);
	back = buildwarden__v1__event__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_json(&back->base, want);
	buildwarden__v1__event__free_unpacked(back, NULL);
	free(buf);
}

/* Fixture: one of everything, nested. */
static char *argv_[] = { S("gcc"), S("-c"), S("a.c") };
static Buildwarden__V1__Ancestor anc0 = BUILDWARDEN__V1__ANCESTOR__INIT;
static Buildwarden__V1__Ancestor anc1 = BUILDWARDEN__V1__ANCESTOR__INIT;
static Buildwarden__V1__Ancestor *ancs[] = { &anc0, &anc1 };
static Buildwarden__V1__Process proc = BUILDWARDEN__V1__PROCESS__INIT;
static Buildwarden__V1__Verdict verdict = BUILDWARDEN__V1__VERDICT__INIT;
static Buildwarden__V1__FileBody fbody = BUILDWARDEN__V1__FILE_BODY__INIT;
static uint8_t chain_bytes[] = { 0xde, 0xad, 0xbe, 0xef };

static void fill_full(Buildwarden__V1__Event *ev)
{
	anc0.pid = 1;
	anc0.exe = S("/sbin/init");
	anc1.pid = 2;
	anc1.exe = S("/bin/make");
	anc1.in_build = 1;
	proc.pid = 1234;
	proc.ppid = 1;
	proc.uid = 1000;
	proc.exe = S("/usr/bin/gcc");
	proc.n_argv = 3;
	proc.argv = argv_;
	proc.in_build = 1;
	proc.n_ancestors = 2;
	proc.ancestors = ancs;
	proc.exe_dev = 2049;
	proc.exe_ino = 131;
	proc.comm = S("gcc");
	proc.attributed = 1;
	proc.authorized_writer = 1;
	verdict.violation = 1;
	verdict.rule = S("protect-src");
	verdict.action = BUILDWARDEN__V1__ACTION__AUDITED;
	fbody.op = BUILDWARDEN__V1__FILE_OP__WRITE;
	fbody.path = S("/src/a.c");
	fbody.new_path = S("/src/b.c");
	fbody.tree = S("/src");

	ev->seq = 42;
	ev->time_ns = 1700000000123456789ull;
	ev->host = S("ci-01");
	ev->run_id = S("r-1");
	ev->process = &proc;
	ev->verdict = &verdict;
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	ev->file = &fbody;
	ev->chain.len = sizeof(chain_bytes);
	ev->chain.data = chain_bytes;
}

static const char full_json[] =
	"{\"seq\":\"42\",\"timeNs\":\"1700000000123456789\",\"host\":\"ci-01\","
	"\"runId\":\"r-1\",\"process\":{\"pid\":1234,\"ppid\":1,\"uid\":1000,"
	"\"exe\":\"/usr/bin/gcc\",\"argv\":[\"gcc\",\"-c\",\"a.c\"],\"inBuild\":true,"
	"\"ancestors\":[{\"pid\":1,\"exe\":\"/sbin/init\"},"
	"{\"pid\":2,\"exe\":\"/bin/make\",\"inBuild\":true}],"
	"\"exeDev\":\"2049\",\"exeIno\":\"131\",\"comm\":\"gcc\",\"attributed\":true,"
	"\"authorizedWriter\":true},"
	"\"verdict\":{\"violation\":true,\"rule\":\"protect-src\",\"action\":\"AUDITED\"},"
	"\"file\":{\"op\":\"WRITE\",\"path\":\"/src/a.c\",\"newPath\":\"/src/b.c\","
	"\"tree\":\"/src\"},\"chain\":\"3q2+7w==\"}";

static void test_pbjson__full_event(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;

	fill_full(&ev);
	assert_json(&ev.base, full_json);
	assert_json_wire(&ev, full_json);
}

static void test_pbjson__empty_event(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;

	assert_json(&ev.base, "{}");
	assert_json_wire(&ev, "{}");
}

static void test_pbjson__defaults_omitted(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Process p = BUILDWARDEN__V1__PROCESS__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;

	/* set-but-default submessages print as {}, their zero fields do not print */
	p.exe = S("");
	p.n_argv = 0;
	v.action = BUILDWARDEN__V1__ACTION__ACTION_UNSPECIFIED;
	ev.process = &p;
	ev.verdict = &v;
	ev.host = NULL; /* hand-built messages may leave strings NULL */
	assert_json(&ev.base, "{\"process\":{},\"verdict\":{}}");
	assert_json_wire(&ev, "{\"process\":{},\"verdict\":{}}");
}

/* Issue 10: `decode --emit-defaults` and the "kind" key. */
static void test_pbjson__emit_defaults_and_kind(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;
	Buildwarden__V1__RunEnd end = BUILDWARDEN__V1__RUN_END__INIT;
	char *s = NULL;
	size_t n = 0;
	FILE *f;

	(void)state;
	ev.verdict = &v;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &end;
	f = open_memstream(&s, &n);
	assert_non_null(f);
	assert_int_equal(pbjson__print_opts(f, &ev.base, PBJSON_EMIT_DEFAULTS | PBJSON_KIND), 0);
	assert_int_equal(fclose(f), 0);
	/* every scalar with its default, an empty list as [], no unset message (process),
	 * no unset oneof member; the kind first, and only at the top */
	assert_string_equal(s, "{\"kind\":\"run_end\",\"seq\":\"0\",\"timeNs\":\"0\",\"host\":\"\","
			       "\"runId\":\"\",\"verdict\":{\"violation\":false,\"rule\":\"\","
			       "\"action\":\"ACTION_UNSPECIFIED\",\"actorKilled\":false},"
			       "\"runEnd\":{\"exitStatus\":0,\"events\":\"0\",\"violations\":\"0\","
			       "\"drops\":\"0\"},\"chain\":\"\"}");
	free(s);
}

static void test_pbjson__oneof_set_but_empty(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;

	/* a set oneof member is data even when empty: which body it is matters */
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev.exec = &ex;
	assert_json(&ev.base, "{\"exec\":{}}");
	assert_json_wire(&ev, "{\"exec\":{}}");
	ex.filename = S("/usr/bin/cc");
	assert_json(&ev.base, "{\"exec\":{\"filename\":\"/usr/bin/cc\"}}");
}

static void test_pbjson__sixty_four_bit_as_strings(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunEnd re = BUILDWARDEN__V1__RUN_END__INIT;

	ev.seq = UINT64_MAX;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &re;
	re.exit_status = -1; /* int32: a number, signed */
	re.events = 1ull << 63;
	re.violations = 1;
	assert_json(&ev.base,
		    "{\"seq\":\"18446744073709551615\",\"runEnd\":{\"exitStatus\":-1,"
		    "\"events\":\"9223372036854775808\",\"violations\":\"1\"}}");
	assert_json_wire(&ev,
			 "{\"seq\":\"18446744073709551615\",\"runEnd\":{\"exitStatus\":-1,"
			 "\"events\":\"9223372036854775808\",\"violations\":\"1\"}}");
}

static void test_pbjson__repeated(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Stats st = BUILDWARDEN__V1__STATS__INIT;
	uint64_t per_cpu[] = { 0, 5, UINT64_MAX };
	static const char want[] =
		"{\"stats\":{\"events\":\"7\",\"ringbufDropsPerCpu\":[\"0\",\"5\","
		"\"18446744073709551615\"],\"spoolFull\":\"2\"}}";

	/* zeros inside a repeated field are elements, not defaults */
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_STATS;
	ev.stats = &st;
	st.events = 7;
	st.n_ringbuf_drops_per_cpu = 3;
	st.ringbuf_drops_per_cpu = per_cpu;
	st.spool_full = 2;
	assert_json(&ev.base, want);
	assert_json_wire(&ev, want);
}

static void test_pbjson__repeated_strings_and_camel_case(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunStart rs = BUILDWARDEN__V1__RUN_START__INIT;
	char *av[] = { S("make"), S(""), S("release") };
	char *layers[] = { S("exec: bpf") };
	static const char want[] =
		"{\"runStart\":{\"argv\":[\"make\",\"\",\"release\"],"
		"\"policyPath\":\"/etc/bw.yaml\",\"policySha256\":\"ab\","
		"\"mode\":\"enforce\",\"agentVersion\":\"1.0\",\"schemaVersion\":1,"
		"\"layers\":[\"exec: bpf\"]}}";

	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
	ev.run_start = &rs;
	rs.n_argv = 3;
	rs.argv = av;
	rs.policy_path = S("/etc/bw.yaml");
	rs.policy_sha256 = S("ab");
	rs.mode = S("enforce");
	rs.agent_version = S("1.0");
	rs.schema_version = 1;
	rs.n_layers = 1;
	rs.layers = layers;
	assert_json(&ev.base, want);
	assert_json_wire(&ev, want);
}

static void test_pbjson__enums(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__ConnectBody cb = BUILDWARDEN__V1__CONNECT_BODY__INIT;
	Buildwarden__V1__ProcessAccessBody pa = BUILDWARDEN__V1__PROCESS_ACCESS_BODY__INIT;

	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
	ev.connect = &cb;
	cb.address = S("10.0.0.1");
	cb.port = 443;
	cb.protocol = BUILDWARDEN__V1__PROTOCOL__TCP;
	assert_json(&ev.base,
		    "{\"connect\":{\"address\":\"10.0.0.1\",\"port\":443,\"protocol\":\"TCP\"}}");
	/* a value from a newer schema: the number, still valid JSON */
	cb.protocol = (Buildwarden__V1__Protocol)99;
	assert_json(&ev.base,
		    "{\"connect\":{\"address\":\"10.0.0.1\",\"port\":443,\"protocol\":99}}");
	assert_json_wire(&ev,
			 "{\"connect\":{\"address\":\"10.0.0.1\",\"port\":443,\"protocol\":99}}");

	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS;
	ev.process_access = &pa;
	pa.kind = BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PROC_MEM_WRITE;
	pa.target_pid = 77;
	assert_json(&ev.base,
		    "{\"processAccess\":{\"kind\":\"PROC_MEM_WRITE\",\"targetPid\":77}}");
}

static void test_pbjson__escaping(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;

	ev.host = S("q\"b\\s/n\nt\tr\rc\x01" "d\x1f" "e\x7f");
	assert_json(&ev.base,
		    "{\"host\":\"q\\\"b\\\\s/n\\nt\\tr\\rc\\u0001d\\u001fe\\u007f\"}");
	assert_json_wire(&ev,
			 "{\"host\":\"q\\\"b\\\\s/n\\nt\\tr\\rc\\u0001d\\u001fe\\u007f\"}");
}

static void test_pbjson__utf8(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		/* valid multibyte passes through untouched */
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
		{ "a\xff" "b", "a\\ufffdb" },
		{ "\xc0\x80", "\\ufffd\\ufffd" },	      /* overlong NUL */
		{ "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" }, /* surrogate */
		{ "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" }, /* > U+10FFFF */
		{ "x\xe2\x82", "x\\ufffd\\ufffd" },	      /* cut at the end */
		{ "\xe2\x82" "a", "\\ufffd\\ufffda" },	      /* cut before ASCII */
		{ "\x80", "\\ufffd" },			      /* lone continuation */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		char want[128];

		ev.host = (char *)cases[i].in;
		snprintf(want, sizeof(want), "{\"host\":\"%s\"}", cases[i].want);
		assert_json(&ev.base, want);
		/* protobuf-c does not validate UTF-8 on unpack: the printer is the guard */
		assert_json_wire(&ev, want);
	}
}

static void test_pbjson__base64(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "f", "Zg==" },     { "fo", "Zm8=" },	   { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "\xff\xfe\xfd", "//79" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		char want[64];

		ev.chain.data = (uint8_t *)cases[i].in;
		ev.chain.len = strlen(cases[i].in);
		snprintf(want, sizeof(want), "{\"chain\":\"%s\"}", cases[i].want);
		assert_json(&ev.base, want);
	}
}

static void test_pbjson__unknown_fields_ignored(void **state)
{
	/* seq=1, then field 99 varint 5 from a newer writer */
	static const uint8_t wire[] = { 0x08, 0x01, 0x98, 0x06, 0x05 };
	Buildwarden__V1__Event *ev;

	ev = buildwarden__v1__event__unpack(NULL, sizeof(wire), wire);
	assert_non_null(ev);
	assert_json(&ev->base, "{\"seq\":\"1\"}");
	buildwarden__v1__event__free_unpacked(ev, NULL);
}

static void test_pbjson__write_error(void **state)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	FILE *f = fopen("/dev/full", "w");

	if (!f)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	fill_full(&ev);
	assert_int_equal(pbjson__print(f, &ev.base), -EIO);
	fclose(f);
}

static void test_pbjson__rejects_bad_message(void **state)
{
	ProtobufCMessage bogus = { 0 };
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	assert_int_equal(pbjson__print(f, &bogus), -EINVAL);
	assert_int_equal(pbjson__print(f, NULL), -EINVAL);
	fclose(f);
}

/* Seeds for the fuzzer: real frames, singly and as streams. */
static void write_frames(const char *dir, const char *name,
			 Buildwarden__V1__Event **evs, size_t n)
{
	char path[4096];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (i = 0; i < n; i++) {
		size_t len = buildwarden__v1__event__get_packed_size(evs[i]);
		uint8_t hdr[FRAME_VARINT_MAX], *buf = malloc(len ? len : 1);

		assert_non_null(buf);
		buildwarden__v1__event__pack(evs[i], buf);
		fwrite(hdr, 1, frame__encode_len(len, hdr), f);
		fwrite(buf, 1, len, f);
		free(buf);
	}
	assert_int_equal(fclose(f), 0);
}

static void write_fuzz_seeds(const char *dir)
{
	Buildwarden__V1__Event full = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Event empty = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Event st = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Event rs = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Event cn = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Stats stats = BUILDWARDEN__V1__STATS__INIT;
	Buildwarden__V1__RunStart start = BUILDWARDEN__V1__RUN_START__INIT;
	Buildwarden__V1__ConnectBody conn = BUILDWARDEN__V1__CONNECT_BODY__INIT;
	uint64_t per_cpu[] = { 1, 0, 300 };
	char *av[] = { S("make"), S("-j8") };
	Buildwarden__V1__Event *all[5];

	fill_full(&full);
	full.host = S("h\xff\x01\"");
	st.seq = 9;
	st.body_case = BUILDWARDEN__V1__EVENT__BODY_STATS;
	st.stats = &stats;
	stats.n_ringbuf_drops_per_cpu = 3;
	stats.ringbuf_drops_per_cpu = per_cpu;
	stats.unattributed = 4;
	rs.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
	rs.run_start = &start;
	start.n_argv = 2;
	start.argv = av;
	start.mode = S("audit");
	cn.body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
	cn.connect = &conn;
	conn.address = S("2001:db8::1");
	conn.port = 8443;
	conn.protocol = BUILDWARDEN__V1__PROTOCOL__UDP;
	all[0] = &rs;
	all[1] = &full;
	all[2] = &cn;
	all[3] = &st;
	all[4] = &empty;

	write_frames(dir, "full", &all[1], 1);
	write_frames(dir, "empty", &all[4], 1);
	write_frames(dir, "stats", &all[3], 1);
	write_frames(dir, "stream", all, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pbjson__full_event),
		cmocka_unit_test(test_pbjson__emit_defaults_and_kind),
		cmocka_unit_test(test_pbjson__empty_event),
		cmocka_unit_test(test_pbjson__defaults_omitted),
		cmocka_unit_test(test_pbjson__oneof_set_but_empty),
		cmocka_unit_test(test_pbjson__sixty_four_bit_as_strings),
		cmocka_unit_test(test_pbjson__repeated),
		cmocka_unit_test(test_pbjson__repeated_strings_and_camel_case),
		cmocka_unit_test(test_pbjson__enums),
		cmocka_unit_test(test_pbjson__escaping),
		cmocka_unit_test(test_pbjson__utf8),
		cmocka_unit_test(test_pbjson__base64),
		cmocka_unit_test(test_pbjson__unknown_fields_ignored),
		cmocka_unit_test(test_pbjson__write_error),
		cmocka_unit_test(test_pbjson__rejects_bad_message),
	};

	if (getenv("BW_FUZZ_CORPUS_DIR"))
		write_fuzz_seeds(getenv("BW_FUZZ_CORPUS_DIR"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
