/* Exit codes other tools and tests rely on (sysexits.h values where one fits): the one
 * table. Library parts return -errno or an enum of their own outcomes, and the
 * subcommands map those here, so a number means one thing whatever exits with it. */
#ifndef BUILDWARDEN_EXITCODES_H
#define BUILDWARDEN_EXITCODES_H

#define EXIT_USAGE 64 /* bad flags or arguments */
#define EXIT_DATAERR 65 /* corrupt events file */
#define EXIT_NOINPUT 66 /* cannot open an input */
#define EXIT_UNAVAILABLE 69 /* the collector cannot listen; enroll: no agent to ask */
#define EXIT_SOFTWARE 70 /* internal error */
#define EXIT_SENSOR 71 /* the sensor cannot start: not root, no BTF, load failed */
#define EXIT_CANTCREAT 73 /* cannot create the events file */
#define EXIT_IOERR 74 /* a read or write failed */
#define EXIT_REFUSED 76 /* enroll: the agent said no (not root, the process is gone) */
#define EXIT_VIOLATION 77 /* the policy was violated */
#define EXIT_POLICY 78 /* bad policy */

#endif
