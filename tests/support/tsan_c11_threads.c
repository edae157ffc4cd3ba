/* ThreadSanitizer builds only (IOTSTREAM_SANITIZE contains "thread"; docs/testing.md).
 *
 * Debian 12's librdkafka makes its threads, locks and condition variables with C11 <threads.h>
 * (thrd_create, mtx_lock, cnd_wait, ... from glibc 2.34). Neither gcc 12's nor clang 14's TSan
 * runtime intercepts those: glibc implements them by calling its internal pthread functions,
 * so TSan never sees librdkafka's threads start (every test that makes a Kafka client crashed
 * inside TSan's allocator on the first malloc of an unregistered "rdk:" thread) nor its locks.
 *
 * This library defines the C11 functions librdkafka uses as the plain pthread calls glibc makes
 * (glibc's mtx_t, cnd_t, thrd_t and once_flag are its pthread types), so they reach TSan's
 * pthread interceptors. It must come before libc in the symbol search order: every test binary
 * links it directly (iotstream_add_gtest); an unversioned definition there satisfies
 * librdkafka's thrd_create@GLIBC_2.34 references, as TSan's own interceptors do.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int to_thrd(int err) {
    switch (err) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    default: return thrd_error;
    }
}

struct start { thrd_start_t func; void *arg; };

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
    struct start *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    s->func = func;
    s->arg = arg;
    int err = pthread_create(thr, NULL, trampoline, s);
    if (err) free(s);
    return to_thrd(err);
}

int thrd_join(thrd_t thr, int *res) {
    void *value = NULL;
    int err = pthread_join(thr, &value);
    if (!err && res) *res = (int)(intptr_t)value;
    return to_thrd(err);
}

int thrd_detach(thrd_t thr) { return to_thrd(pthread_detach(thr)); }

int mtx_init(mtx_t *mtx, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
    pthread_mutexattr_destroy(&attr);
    return to_thrd(err);
}
int mtx_lock(mtx_t *mtx) { return to_thrd(pthread_mutex_lock((pthread_mutex_t *)mtx)); }
int mtx_trylock(mtx_t *mtx) { return to_thrd(pthread_mutex_trylock((pthread_mutex_t *)mtx)); }
int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict at) {
    return to_thrd(pthread_mutex_timedlock((pthread_mutex_t *)mtx, at));
}
int mtx_unlock(mtx_t *mtx) { return to_thrd(pthread_mutex_unlock((pthread_mutex_t *)mtx)); }
void mtx_destroy(mtx_t *mtx) { pthread_mutex_destroy((pthread_mutex_t *)mtx); }

int cnd_init(cnd_t *cnd) { return to_thrd(pthread_cond_init((pthread_cond_t *)cnd, NULL)); }
int cnd_signal(cnd_t *cnd) { return to_thrd(pthread_cond_signal((pthread_cond_t *)cnd)); }
int cnd_broadcast(cnd_t *cnd) { return to_thrd(pthread_cond_broadcast((pthread_cond_t *)cnd)); }
int cnd_wait(cnd_t *cnd, mtx_t *mtx) {
    return to_thrd(pthread_cond_wait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx));
}
int cnd_timedwait(cnd_t *restrict cnd, mtx_t *restrict mtx, const struct timespec *restrict at) {
    return to_thrd(pthread_cond_timedwait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx, at));
}
void cnd_destroy(cnd_t *cnd) { pthread_cond_destroy((pthread_cond_t *)cnd); }

void call_once(once_flag *flag, void (*func)(void)) { pthread_once((pthread_once_t *)flag, func); }
