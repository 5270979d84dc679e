/* main.c - runs one CUnit suite per module: `herald_unit_tests <suite>` or all
 * suites with no argument. Each test/unit/<suite>_test.c provides
 * hd_test_suite_<suite>(), which adds its suite to the registry. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#define HD_SUITES(XX)                                                                                          \
    XX(common) XX(protocol) XX(config) XX(channels) XX(cleanup) XX(webhooks) XX(http) XX(metrics) XX(handler)        \
        XX(redis_scripts)

#define HD_DECLARE(name) void hd_test_suite_##name(void) __attribute__((weak));
HD_SUITES(HD_DECLARE)

typedef struct suite_entry {
    const char *name;
    void (*add)(void);
} suite_entry;

int main(int argc, char **argv)
{
#define HD_ENTRY(name) {#name, hd_test_suite_##name},
    suite_entry suites[] = {HD_SUITES(HD_ENTRY)};
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    int added = 0;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (!suites[i].add)
            continue;
        if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
            continue;
        suites[i].add();
        added++;
    }
    if (!added) {
        fprintf(stderr, "no such suite: %s\n", argc > 1 ? argv[1] : "(none)");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
