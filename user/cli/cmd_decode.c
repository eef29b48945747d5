/* buildwarden decode [FILE|-]: an events file as JSON lines. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/decode_exit.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "transport/decode.h"

int cmd_decode(int argc, char **argv)
{
	const char *usage = help__text("decode"), *file = NULL;
	unsigned flags = DECODE_KIND;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--emit-defaults")) {
			flags |= DECODE_EMIT_DEFAULTS;
		} else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
			const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);

			if (v && !strcmp(v, "text"))
				flags |= DECODE_TEXT;
			else if (v && !strcmp(v, "json"))
				flags &= ~DECODE_TEXT;
			else
				return usage__error("buildwarden decode", usage,
						    "--format must be json or text, not '%s'", v ? v : "");
		} else if (a[0] == '-' && a[1]) {
			return usage__error("buildwarden decode", usage, "unknown option '%s'", a);
		} else if (file) {
			return usage__error("buildwarden decode", usage, "one FILE at most");
		} else {
			file = a;
		}
	}
	if ((flags & DECODE_TEXT) && (flags & DECODE_EMIT_DEFAULTS))
		return usage__error("buildwarden decode", usage, "--emit-defaults is for JSON, not --format text");
	return decode_exit__code(decode__stream_opts(file ? file : "-", stdout, stderr, flags));
}
