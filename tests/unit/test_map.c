/* sm_map against a simple model: random puts, gets and deletes. */
#include "base/map.h"
#include "test.h"

#define N 5000

static void test_map_model(void) {
    sm_map_t m;
    sm_map_init(&m);
    static intptr_t model[N]; /* 0 = absent */
    uint64_t s = 42;
    for (int step = 0; step < 200000; step++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((s >> 33) % N);
        char key[16];
        int kl = snprintf(key, sizeof(key), "k%d", k);
        int op = (int)((s >> 20) % 3);
        if (op == 0) {
            CHECK_EQ_INT(0, sm_map_put(&m, key, (size_t)kl, (void *)(intptr_t)(step + 1)));
            model[k] = step + 1;
        } else if (op == 1) {
            void *v = sm_map_del(&m, key, (size_t)kl);
            CHECK_EQ_INT(model[k], (intptr_t)v);
            model[k] = 0;
        } else {
            CHECK_EQ_INT(model[k], (intptr_t)sm_map_get(&m, key, (size_t)kl));
        }
    }
    size_t live = 0, it = 0;
    for (int k = 0; k < N; k++) live += model[k] != 0;
    CHECK_EQ_INT(live, sm_map_size(&m));
    size_t seen = 0;
    void *v;
    while (sm_map_next(&m, &it, NULL, NULL, &v)) seen++;
    CHECK_EQ_INT(live, seen);
    sm_map_free(&m);
}

int main(void) {
    RUN(test_map_model);
    return t_summary("map");
}
