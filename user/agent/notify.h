/* systemd's readiness protocol (sd_notify(3)), without libsystemd: a service started
 * with Type=notify is "started" only once the agent says READY=1, after its sensor is
 * attached, so units ordered after it (the CI runner) never run a job unseen. */
#ifndef BUILDWARDEN_AGENT_NOTIFY_H
#define BUILDWARDEN_AGENT_NOTIFY_H

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET: 0 when sent or when there is no
 * such socket (not started by systemd), -errno otherwise. */
int notify__send(const char *state);

#endif /* BUILDWARDEN_AGENT_NOTIFY_H */
