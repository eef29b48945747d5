/* Every text `buildwarden ... --help` prints, and the one place the man pages come from:
 * tools/gen_man.c turns each page into buildwarden(8) / buildwarden-NAME(8) at build time,
 * so the two cannot disagree (tests/packaging/test_man.sh checks the rendered pages).
 *
 * Format of a page's text, which gen_man relies on:
 *   "usage: ..." lines (and lines indented under them) up to the first blank line: SYNOPSIS;
 *   a line at column 0 ending in ':' (e.g. "options:"): a section heading;
 *   "  TERM  description" (two spaces, TERM, two or more spaces): one item; lines indented
 *   deeper with no TERM continue the description;
 *   any other line: running text. Nothing but ASCII. */
#ifndef BUILDWARDEN_CLI_HELP_H
#define BUILDWARDEN_CLI_HELP_H

struct help_page {
	const char *name;    /* "run"; "" for buildwarden itself */
	const char *summary; /* the man page's NAME line, after "buildwarden-run - " */
	const char *text;    /* what --help prints */
};

extern const struct help_page help_pages[];
extern const unsigned help_n_pages;

/* the page called name ("" for the top level), NULL if none */
const struct help_page *help__page(const char *name);
/* its text; the top-level usage if there is no such page */
const char *help__text(const char *name);

#endif /* BUILDWARDEN_CLI_HELP_H */
