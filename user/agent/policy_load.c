/* Policy loading: see policy_load.h. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "agent/policy_load.h"
#include "base/log.h"

int policy_load__file(const char *path, struct bw_policy **out)
{
	static const char builtin[] = "version: 1\n";
	const char *name = path ? path : "<built-in>";
	struct bw_diags diags;
	int err;

	memset(&diags, 0, sizeof(diags));
	if (path)
		err = policy__load_file(path, 0, out, &diags);
	else
		err = policy__parse(builtin, sizeof(builtin) - 1, name, "/", 0, out, &diags);
	if (err) {
		policy__print_diags(&diags, name, stderr);
		if (diags.n == 0)
			log__line(stderr, NULL, "%s: cannot load the policy: %s", name, strerror(-err));
	}
	return err;
}

void policy_load__sha256(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[8192];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (!path || !(f = fopen(path, "rbe")))
		return;
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			EVP_DigestUpdate(ctx, buf, n);
		if (EVP_DigestFinal_ex(ctx, md, &mdlen))
			for (unsigned i = 0; i < mdlen && i < 32; i++)
				snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	EVP_MD_CTX_free(ctx);
	fclose(f);
}
