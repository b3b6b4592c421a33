/*
 * bg.c — background handlers: the Nexus's worker pool and the two queues
 * between it and the Rpc threads.
 *
 *   Rpc thread --(job queue: mutex + condvar, workers sleep on it)--> worker
 *   worker --(done stack: lock-free, one CAS per response)--> Rpc thread
 *
 * An Rpc thread hands a request handle (an sslot) whose request it owns to
 * the job queue; a worker runs the handler; the handler's
 * udrpc_enqueue_response() pushes the handle onto its Rpc's done stack,
 * and the Rpc thread, at its next loop iteration, takes the whole stack
 * with one atomic exchange and sends the responses. The handle's memory
 * stays valid meanwhile: its session counts it in in_handler (a session
 * closed under it becomes a zombie until it answers), and udrpc_destroy()
 * waits until no worker runs one of its handlers.
 *
 * The done stack is a Treiber stack drained all at once: with a single
 * consumer that takes everything by exchange, there is no ABA.
 */
#include <errno.h>
#include <stdlib.h>

#include "rpc_internal.h"

static void *worker_main(void *arg)
{
    udrpc_nexus_t *nx = arg;
    pthread_mutex_lock(&nx->bg_lock);
    for (;;) {
        while (!nx->bg_head && !nx->bg_stop)
            pthread_cond_wait(&nx->bg_cond, &nx->bg_lock);
        if (nx->bg_stop)
            break;
        sslot_t *h = nx->bg_head;
        nx->bg_head = h->bg_next;
        if (!nx->bg_head)
            nx->bg_tail = NULL;
        struct udrpc *rpc = h->sess->rpc;
        /* Counted under the lock, so that udrpc_destroy(), which removes
         * its jobs under the lock, then waits for this count, misses none. */
        atomic_fetch_add_explicit(&rpc->bg_running, 1, memory_order_relaxed);
        pthread_mutex_unlock(&nx->bg_lock);

        rpc->handlers[h->req_type].fn(h, rpc->ctx);

        atomic_fetch_sub_explicit(&rpc->bg_running, 1, memory_order_release);
        pthread_mutex_lock(&nx->bg_lock);
    }
    pthread_mutex_unlock(&nx->bg_lock);
    return NULL;
}

int udrpc__bg_start(udrpc_nexus_t *nx)
{
    pthread_mutex_init(&nx->bg_lock, NULL);
    pthread_cond_init(&nx->bg_cond, NULL);
    if (nx->cfg.bg_threads == 0)
        return 0;
    nx->bg_threads = calloc(nx->cfg.bg_threads, sizeof(*nx->bg_threads));
    if (!nx->bg_threads)
        return ENOMEM;
    for (unsigned i = 0; i < nx->cfg.bg_threads; i++) {
        int err = pthread_create(&nx->bg_threads[i], NULL, worker_main, nx);
        if (err) {
            nx->cfg.bg_threads = i; /* udrpc__bg_stop joins those started */
            udrpc__bg_stop(nx);
            return err;
        }
    }
    return 0;
}

void udrpc__bg_stop(udrpc_nexus_t *nx)
{
    pthread_mutex_lock(&nx->bg_lock);
    nx->bg_stop = true;
    pthread_cond_broadcast(&nx->bg_cond);
    pthread_mutex_unlock(&nx->bg_lock);
    for (unsigned i = 0; i < nx->cfg.bg_threads; i++)
        pthread_join(nx->bg_threads[i], NULL);
    free(nx->bg_threads);
    nx->bg_threads = NULL;
    pthread_cond_destroy(&nx->bg_cond);
    pthread_mutex_destroy(&nx->bg_lock);
}

/* Rpc thread: h's request is owned (not a view into an RX buffer). */
void udrpc__bg_submit(struct udrpc *rpc, sslot_t *h)
{
    udrpc_nexus_t *nx = rpc->nx;
    SV_SET(h, SV_IN_BG);
    h->bg_answered = false;
    h->bg_next = NULL;
    rpc->bg_pending++;
    pthread_mutex_lock(&nx->bg_lock);
    if (nx->bg_tail)
        nx->bg_tail->bg_next = h;
    else
        nx->bg_head = h;
    nx->bg_tail = h;
    pthread_cond_signal(&nx->bg_cond);
    pthread_mutex_unlock(&nx->bg_lock);
}

/* Any thread (the worker, or whoever holds a deferred BG handle). */
void udrpc__bg_done_push(struct udrpc *rpc, sslot_t *h)
{
    sslot_t *head = atomic_load_explicit(&rpc->bg_done, memory_order_relaxed);
    do {
        h->bg_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&rpc->bg_done, &head, h,
                                                    memory_order_release,
                                                    memory_order_relaxed));
    udrpc__ev_notify(rpc);
}

/* Rpc thread: takes every response the workers handed back, oldest first. */
void udrpc__bg_process_done(struct udrpc *rpc)
{
    sslot_t *h = atomic_exchange_explicit(&rpc->bg_done, NULL, memory_order_acquire);
    sslot_t *fifo = NULL;
    while (h) { /* the stack is newest first: reverse it */
        sslot_t *next = h->bg_next;
        h->bg_next = fifo;
        fifo = h;
        h = next;
    }
    while (fifo) {
        sslot_t *next = fifo->bg_next;
        rpc->bg_pending--;
        udrpc__server_respond_bg(rpc, fifo);
        fifo = next;
    }
}

/* udrpc_destroy: no worker may touch this Rpc's handles afterwards. Jobs not
 * started are dropped; running handlers are waited for (a BG handler that
 * blocks forever blocks this too, as a joined thread would). */
void udrpc__bg_detach(struct udrpc *rpc)
{
    udrpc_nexus_t *nx = rpc->nx;
    if (rpc->bg_pending == 0)
        return;
    pthread_mutex_lock(&nx->bg_lock);
    sslot_t **pp = &nx->bg_head;
    nx->bg_tail = NULL;
    while (*pp) {
        if ((*pp)->sess->rpc == rpc) {
            *pp = (*pp)->bg_next;
        } else {
            nx->bg_tail = *pp;
            pp = &(*pp)->bg_next;
        }
    }
    pthread_mutex_unlock(&nx->bg_lock);
    while (atomic_load_explicit(&rpc->bg_running, memory_order_acquire) != 0) {
        struct timespec ms = { .tv_nsec = 1000000 };
        nanosleep(&ms, NULL);
    }
}
