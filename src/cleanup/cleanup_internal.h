/* cleanup_internal.h - the job layout shared by job.c and the pool. */
#ifndef HD_CLEANUP_INTERNAL_H
#define HD_CLEANUP_INTERNAL_H

#include <stdio.h>

#include "cleanup.h"
#include "common/common.h"

typedef struct hd_cleanup_entry {
    hd_channel *ch; /* reference owned by the job */
    char *user_key;
    char *user_id_json;
} hd_cleanup_entry;

struct hd_cleanup_job {
    struct hd_cleanup_job *next; /* in a worker queue or batch */
    void *app;
    unsigned thread;
    char socket_id[32];
    hd_cleanup_entry *entries;
    size_t n, cap;
    uint64_t enqueued_us;
};

/* Run every entry through leave, then free the job. */
void hd_cleanup__job_run(hd_cleanup_leave_fn leave, void *ctx, hd_cleanup_job *job);

#endif /* HD_CLEANUP_INTERNAL_H */
