/* The thread pool: persistent pthreads that share the units of one job.
 *
 * The pool knows nothing of plans: a job is "units [0, n) of this function
 * and context", and workers take ranges [a, b) of it.  Whether a copy uses
 * the pool at all is decided above it (kernels.c).
 *
 * Why our own pool and not OpenMP: libgomp's workers do not survive fork()
 * (a child that uses OpenMP after the parent did can hang), and OpenMP gives
 * no way to say "if another caller is using the threads, run alone" -- which
 * is how we avoid N callers x T threads.
 *
 * - One job at a time: a caller that finds the pool busy runs its plan on
 *   its own thread, so concurrent callers add at most one busy thread each.
 * - fork(): the atfork handlers hold the pool's locks across fork(); the
 *   child, which has no workers, starts with an empty pool and spawns new
 *   workers when it first needs them.
 * - pf_pool_shutdown() (called at interpreter exit) stops and joins workers.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf, pthreads under -std=c11 */

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER; /* one job */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Guarded by state_lock. */
static pthread_t workers[PF_MAX_THREADS];
static uint64_t start_generation[PF_MAX_THREADS]; /* jobs before its birth */
static int n_workers;
static uint64_t generation;  /* bumped once per job */
static int quitting;
static int helpers_wanted;   /* workers 0 .. helpers_wanted-1 join the job */
static int helpers_running;  /* of those, still working */

/* The job; written before generation is bumped, read after. */
static pf_job_fn job_fn;
static void *job_ctx;
static int64_t job_units;
static int64_t job_grain;
static _Atomic int64_t job_next;

static _Atomic int default_threads;

static void take_units(void)
{
    const int64_t units = job_units;
    for (;;) {
        int64_t u = atomic_fetch_add(&job_next, job_grain);
        if (u >= units)
            return;
        int64_t end = units - u > job_grain ? u + job_grain : units;
        job_fn(job_ctx, u, end);
    }
}

static void *worker_main(void *arg)
{
    const int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&state_lock);
    uint64_t seen = start_generation[id];
    for (;;) {
        while (generation == seen && !quitting)
            pthread_cond_wait(&wake, &state_lock);
        if (quitting)
            break;
        seen = generation;
        if (id >= helpers_wanted)
            continue;
        pthread_mutex_unlock(&state_lock);
        take_units();
        pthread_mutex_lock(&state_lock);
        if (--helpers_running == 0)
            pthread_cond_signal(&finished);
    }
    pthread_mutex_unlock(&state_lock);
    return NULL;
}

static void before_fork(void)
{
    pthread_mutex_lock(&job_lock);
    pthread_mutex_lock(&state_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&job_lock);
}

static void after_fork_child(void)
{
    /* The workers did not come along; whoever waited on the conditions is
     * gone with them. */
    n_workers = 0;
    quitting = 0;
    helpers_wanted = helpers_running = 0;
    pthread_cond_init(&wake, NULL);
    pthread_cond_init(&finished, NULL);
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&job_lock);
}

static void register_atfork(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Called with state_lock held.  Returns how many workers exist (>= 0). */
static int grow_workers(int wanted)
{
    while (n_workers < wanted) {
        start_generation[n_workers] = generation;
        if (pthread_create(&workers[n_workers], NULL, worker_main,
                           (void *)(intptr_t)n_workers) != 0)
            break;
        n_workers++;
    }
    return n_workers;
}

int pf_pool_run(int num_threads, int64_t units, pf_job_fn fn, void *ctx)
{
    pthread_once(&atfork_once, register_atfork);
    if (num_threads < 2 || pthread_mutex_trylock(&job_lock) != 0) {
        /* One thread asked for, or another caller has the workers: run
         * alone rather than pile on. */
        fn(ctx, 0, units);
        return PF_OK;
    }

    pthread_mutex_lock(&state_lock);
    int helpers = grow_workers(num_threads - 1);
    if (helpers > num_threads - 1)
        helpers = num_threads - 1;
    job_fn = fn;
    job_ctx = ctx;
    job_units = units;
    /* A few grains per thread: balance on a noisy machine, yet contiguous
     * ranges for the prefetchers. */
    job_grain = units / ((int64_t)(helpers + 1) * 4);
    if (job_grain < 1)
        job_grain = 1;
    atomic_store(&job_next, 0);
    helpers_wanted = helpers_running = helpers;
    generation++;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&state_lock);

    take_units();

    pthread_mutex_lock(&state_lock);
    while (helpers_running > 0)
        pthread_cond_wait(&finished, &state_lock);
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&job_lock);
    return PF_OK;
}

void pf_pool_shutdown(void)
{
    pthread_mutex_lock(&job_lock);
    pthread_mutex_lock(&state_lock);
    quitting = 1;
    pthread_cond_broadcast(&wake);
    int n = n_workers;
    pthread_mutex_unlock(&state_lock);
    for (int i = 0; i < n; i++)
        pthread_join(workers[i], NULL);
    pthread_mutex_lock(&state_lock);
    n_workers = 0;
    quitting = 0;
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&job_lock);
}

int pf_pool_size(void)
{
    pthread_mutex_lock(&state_lock);
    int n = n_workers;
    pthread_mutex_unlock(&state_lock);
    return n;
}

void pf_set_default_threads(int num_threads)
{
    atomic_store(&default_threads, num_threads > PF_MAX_THREADS
                                       ? PF_MAX_THREADS : num_threads);
}

int pf_get_default_threads(void)
{
    int n = atomic_load(&default_threads);
    if (n > 0)
        return n;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > PF_MAX_THREADS ? PF_MAX_THREADS : (int)cpus;
}
