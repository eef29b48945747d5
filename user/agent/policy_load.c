/* Policy loading: see policy_load.h. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/policy_load.h"
#include "base/hex.h"
#include "base/log.h"

void policy_load__sha256_bytes(const void *buf, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	out[0] = '\0';
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, buf, len) &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32)
		hex__encode(md, mdlen, out);
	EVP_MD_CTX_free(ctx);
}

int policy_load__file(const char *path, struct bw_policy **out, char sha256[65])
{
	static const char builtin[] = "version: 1\n";
	const char *name = path ? path : "<built-in>";
	struct bw_diags diags;
	char *bytes = NULL;
	size_t nbytes = 0;
	int err;

	memset(&diags, 0, sizeof(diags));
	if (sha256)
		sha256[0] = '\0';
	if (path)
		err = policy__load_file_bytes(path, 0, out, &diags, sha256 ? &bytes : NULL, &nbytes);
	else
		err = policy__parse(builtin, sizeof(builtin) - 1, name, "/", 0, out, &diags);
	/* warnings too: a loaded policy with a hole in it says so where it is loaded */
	if (err || diags.n)
		policy__print_diags(&diags, name, stderr);
	if (err) {
		if (diags.n == 0)
			log__line(stderr, NULL, "%s: cannot load the policy: %s", name, strerror(-err));
		return err;
	}
	if (bytes)
		policy_load__sha256_bytes(bytes, nbytes, sha256);
	free(bytes);
	return 0;
}
