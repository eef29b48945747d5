/* Writing strings from events into documents. Event data is attacker-controlled (a
 * build's argv, paths, comm hold any byte), so every string that reaches a report goes
 * through one of these: each makes the text inert in its context and replaces bytes
 * that are not well-formed UTF-8 with U+FFFD, so the document stays valid. */
#ifndef BUILDWARDEN_REPORT_ESCAPE_H
#define BUILDWARDEN_REPORT_ESCAPE_H

#include <stdio.h>

/* HTML text and attribute values: & < > " ' as entities, control characters as the
 * visible text "\xNN". NULL prints nothing. */
void esc__html(FILE *out, const char *s);

/* The inside of a JSON string: " \ and control characters escaped, and < > & U+2028
 * U+2029 as \u escapes, so the JSON is also safe inside an HTML <script> element. */
void esc__json(FILE *out, const char *s);

/* Markdown (GitHub's, CommonMark) inline text, also inside a table cell: every ASCII
 * punctuation character backslash-escaped (no emphasis, links, HTML, @mentions or cell
 * breaks can be made), control characters as the text "\xNN". */
void esc__md(FILE *out, const char *s);

/* A path as the path of a URI reference (RFC 3986): unreserved characters and '/' as
 * they are, every other byte percent-encoded. */
void esc__uri_path(FILE *out, const char *s);

#endif /* BUILDWARDEN_REPORT_ESCAPE_H */
