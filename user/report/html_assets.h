/* The style sheet and the script of the HTML report, inlined into every page: the
 * page fetches nothing (its Content-Security-Policy forbids it). */
#ifndef BUILDWARDEN_REPORT_HTML_ASSETS_H
#define BUILDWARDEN_REPORT_HTML_ASSETS_H

extern const char html_css[];
/* Reads the JSON in <script id="bw-data">, draws the collapsed process tree (children
 * made only when a node is opened), the outputs and egress tables in pages, and opens
 * the node a URL fragment names: #p-INDEX, or #pid-PID (the last process with that pid). */
extern const char html_js[];

#endif /* BUILDWARDEN_REPORT_HTML_ASSETS_H */
