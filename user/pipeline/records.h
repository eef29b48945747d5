/* Ring buffer bytes -> records checked against the ABI: type, version and size agree,
 * and every length inside lies within the record. */
#ifndef BUILDWARDEN_RECORDS_H
#define BUILDWARDEN_RECORDS_H

#include <linux/types.h>
#include <stddef.h>

#include "sensor_abi.h"

/* Returns the record's type, or -EINVAL (bad size/version/lengths) or -ENOTSUP. */
int records__check(const void *data, size_t size);

#endif
