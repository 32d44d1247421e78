/*
 * LD_PRELOAD shim for iscsi-test-cu: makes "silent" skips visible.
 *
 * Many libiscsi tests skip by logging "[SKIPPED] ..." and calling CU_PASS("[SKIPPED] ..."), but some
 * only call CU_PASS(...), which CUnit's basic mode never prints: the test just shows "passed".
 * CU_PASS expands to CU_assertImplementation(CU_TRUE, line, "CU_PASS(<msg>)", file, "", CU_FALSE);
 * this wrapper prints such assertions as "    [CU_PASS-SKIPPED] <msg>" on stdout (the same stdio
 * stream as the test's own log lines, so ordering is preserved) and then calls the real function.
 * It also makes stdout line-buffered, so a run killed by the runner's timeout (or crashing) loses
 * no finished test's verdict. Built and used by tools/conformance/run.ts when a C compiler is available.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

__attribute__((constructor)) static void line_buffered_stdout(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

typedef int CU_BOOL;
typedef CU_BOOL (*assert_fn)(CU_BOOL, unsigned int, const char *, const char *, const char *, CU_BOOL);

CU_BOOL CU_assertImplementation(CU_BOOL bValue, unsigned int uiLine, const char *strCondition,
                                const char *strFile, const char *strFunction, CU_BOOL bFatal)
{
	static assert_fn real;
	if (!real)
		real = (assert_fn)dlsym(RTLD_NEXT, "CU_assertImplementation");
	if (bValue && strCondition && strstr(strCondition, "[SKIPPED]")) {
		printf("    [CU_PASS-SKIPPED] %s (%s:%u)\n", strCondition, strFile ? strFile : "?", uiLine);
	}
	return real(bValue, uiLine, strCondition, strFile, strFunction, bFatal);
}
