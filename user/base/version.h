/* Versions that more than one part must agree on. */
#ifndef BUILDWARDEN_BASE_VERSION_H
#define BUILDWARDEN_BASE_VERSION_H

/* The event schema (proto/buildwarden.proto) and the collector protocol: RunStart
 * carries it, and the collector refuses a Hello that speaks another. 2: a run's chain
 * starts from a value bound to its run id (docs/collector-protocol.md, "Chain"), not
 * from 32 zero bytes. */
#define BW_SCHEMA_VERSION 2

#endif /* BUILDWARDEN_BASE_VERSION_H */
