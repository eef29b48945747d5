/* One readable line per event, for `buildwarden decode --format text`: when, which run,
 * what happened, who did it, and the verdict with the rule that decided. */
#ifndef BUILDWARDEN_TRANSPORT_EVENT_TEXT_H
#define BUILDWARDEN_TRANSPORT_EVENT_TEXT_H

#include <stdio.h>

#include "buildwarden.pb-c.h"

/* Prints ev as one line with its newline; strings are escaped (no control character
 * of the event's reaches the terminal). */
void event_text__print(FILE *out, const Buildwarden__V1__Event *ev);

#endif
