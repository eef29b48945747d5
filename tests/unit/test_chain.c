// SPDX-License-Identifier: GPL-2.0
/* Hash chain known answers: every expected value is computed here independently, with
 * OpenSSL's one-shot SHA256()/HMAC() over the concatenation the protocol document
 * spells out, plus two constants from Python's hashlib so that a shared mistake in
 * both computations cannot pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "transport/chain.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* prev || be64(seq) || event, as the protocol document writes it */
static size_t concat(const uint8_t prev[32], uint64_t seq, const uint8_t *ev, size_t len,
		     uint8_t *buf)
{
	memcpy(buf, prev, 32);
	for (int i = 0; i < 8; i++)
		buf[32 + i] = (uint8_t)(seq >> (56 - 8 * i));
	if (len)
		memcpy(buf + 40, ev, len);
	return 40 + len;
}

static void test_chain__python_constants(void **state)
{
	const uint8_t zero[32] = { 0 }, ev[] = { 0x08, 0x01 };
	uint8_t want[32], got[32];

	assert_int_equal(chain__next(zero, 1, ev, sizeof(ev), NULL, 0, got), 0);
	hex("b7432e05d255fdcbf66c8b0a644bcb51567daef22a1a2b16df5297985390dd48", want, 32);
	assert_memory_equal(got, want, 32);

	assert_int_equal(chain__next(zero, 1, ev, sizeof(ev), (const uint8_t *)"k3y", 3, got), 0);
	hex("7929a638ff361b2426258d077d105054e911b88171349396340e5ff5119e65fd", want, 32);
	assert_memory_equal(got, want, 32);
}

/* A chain of frames of growing sizes, seqs that exercise every byte of be64, keys
 * shorter than, equal to and longer than the 64-byte HMAC block. */
static void test_chain__against_openssl(void **state)
{
	static const size_t keylens[] = { 0, 1, 32, 64, 65, 200 };
	static const uint64_t seqs[] = { 1, 2, 255, 256, 0x0102030405060708ull, UINT64_MAX };
	uint8_t key[200], ev[3000], *buf = malloc(40 + sizeof(ev));

	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(ev); i++)
		ev[i] = (uint8_t)(i * 13);

	for (size_t k = 0; k < sizeof(keylens) / sizeof(keylens[0]); k++) {
		uint8_t prev[32] = { 0 }, want[32];

		for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
			size_t len = s * 500, n = concat(prev, seqs[s], ev, len, buf);
			unsigned int mdlen = 0;

			if (keylens[k]) {
				assert_non_null(HMAC(EVP_sha256(), key, (int)keylens[k], buf, n,
						     want, &mdlen));
				assert_int_equal(mdlen, 32);
			} else {
				SHA256(buf, n, want);
			}
			/* out aliasing prev is how the writer uses it */
			assert_int_equal(chain__next(prev, seqs[s], ev, len, key, keylens[k], prev), 0);
			assert_memory_equal(prev, want, 32);
		}
	}
	free(buf);
}

static void test_chain__empty_event(void **state)
{
	const uint8_t zero[32] = { 0 };
	uint8_t buf[40], want[32], got[32];

	SHA256(buf, concat(zero, 7, NULL, 0, buf), want);
	assert_int_equal(chain__next(zero, 7, NULL, 0, NULL, 0, got), 0);
	assert_memory_equal(got, want, 32);
}

static void test_chain__read_key(void **state)
{
	char path[] = "/tmp/bw_test_chain.XXXXXX";
	uint8_t key[CHAIN_KEY_MAX], big[CHAIN_KEY_MAX + 1];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	/* exact bytes, the trailing newline included */
	assert_int_equal(write(fd, "secret\n", 7), 7);
	assert_int_equal(chain__read_key(path, key), 7);
	assert_memory_equal(key, "secret\n", 7);

	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(chain__read_key(path, key), -EINVAL);

	memset(big, 'k', sizeof(big));
	assert_int_equal(pwrite(fd, big, CHAIN_KEY_MAX, 0), CHAIN_KEY_MAX);
	assert_int_equal(chain__read_key(path, key), CHAIN_KEY_MAX);
	assert_int_equal(pwrite(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
	assert_int_equal(chain__read_key(path, key), -EFBIG);

	close(fd);
	unlink(path);
	assert_int_equal(chain__read_key(path, key), -ENOENT);
}

/* The agent's key is a secret: a key file that others may read, that another user owns,
 * that is a symbolic link or not a regular file is refused before a byte is used. */
static void test_chain__read_key_private_only(void **state)
{
	char dir[] = "/tmp/bw_test_chain.XXXXXX", path[64], link[64];
	uint8_t key[CHAIN_KEY_MAX];
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.key", dir);
	snprintf(link, sizeof(link), "%s/link.key", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "k3y", 3), 3);
	close(fd);
	assert_int_equal(chain__read_key(path, key), 3);

	assert_int_equal(chmod(path, 0644), 0); /* world-readable */
	assert_int_equal(chain__read_key(path, key), -EACCES);
	assert_int_equal(chmod(path, 0640), 0); /* group-readable */
	assert_int_equal(chain__read_key(path, key), -EACCES);
	assert_int_equal(chmod(path, 0602), 0); /* world-writable */
	assert_int_equal(chain__read_key(path, key), -EACCES);
	assert_int_equal(chmod(path, 0600), 0);

	if (geteuid() == 0) { /* another owner: only root can give the file away */
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(chain__read_key(path, key), -EPERM);
		assert_int_equal(chown(path, 0, 0), 0);
	}
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(chain__read_key(link, key), -ELOOP);
	unlink(link);

	unlink(path);
	alarm(10); /* a blocking open would hang here */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(chain__read_key(path, key), -ENXIO);
	alarm(0);
	unlink(path);
	rmdir(dir);
}

/* The collector's variant reads a file the same way but never blocks: a FIFO planted
 * where a key should be (no writer) is an empty key, not a stalled event loop. */
static void test_chain__read_key_nowait(void **state)
{
	char dir[] = "/tmp/bw_test_chain.XXXXXX", path[64];
	uint8_t key[CHAIN_KEY_MAX];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.key", dir);
	assert_int_equal(chain__read_key_nowait(path, key), -ENOENT);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs("k3y\n", f) >= 0, 1);
	fclose(f);
	assert_int_equal(chain__read_key_nowait(path, key), 4);
	assert_memory_equal(key, "k3y\n", 4);
	unlink(path);

	alarm(10); /* a blocking open would hang here */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(chain__read_key_nowait(path, key), -EINVAL);
	alarm(0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain__python_constants),
		cmocka_unit_test(test_chain__against_openssl),
		cmocka_unit_test(test_chain__empty_event),
		cmocka_unit_test(test_chain__read_key),
		cmocka_unit_test(test_chain__read_key_nowait),
		cmocka_unit_test(test_chain__read_key_private_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
