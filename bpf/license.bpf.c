/* The sensor uses GPL-only helpers (bpf_probe_read_*, bpf_send_signal). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
