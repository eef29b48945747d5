/* Versions that more than one part must agree on. */
#ifndef BUILDWARDEN_BASE_VERSION_H
#define BUILDWARDEN_BASE_VERSION_H

/* The event schema (proto/buildwarden.proto): RunStart carries it, and the collector
 * refuses a Hello that speaks another. */
#define BW_SCHEMA_VERSION 1

#endif /* BUILDWARDEN_BASE_VERSION_H */
