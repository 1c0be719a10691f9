/* nice.h: when the daemon counts as a scheduling group of its own, the
 * cgroup part (um_sched_root_cpu_cgroup()): /proc/self/cgroup given as
 * text, a cgroup v2 hierarchy as a tree of cgroup.controllers files under
 * the fixture's root. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "nice.h"

static struct um_fx fx;

static void setup(void)
{
	int r = um_fx_init(&fx);

	ck_assert_msg(r == 0, "fixture: %s", strerror(-r));
}

static void teardown(void)
{
	ck_assert_int_eq(um_fx_leaked_fds(&fx), 0);
	um_fx_release(&fx);
}

/* proc_cgroup read as /proc/self/cgroup, the v2 hierarchy at v2/. */
static bool root_cpu(const char *proc_cgroup)
{
	FILE *f = fmemopen((void *)proc_cgroup, strlen(proc_cgroup), "r");
	bool r;

	ck_assert_ptr_nonnull(f);
	r = um_sched_root_cpu_cgroup(f, um_fx_path(&fx, "v2"));
	ck_assert_int_eq(fclose(f), 0);
	return r;
}

/* This machine's kind: cgroup v1, cpu and cpuacct apart or together. */
START_TEST(v1)
{
	ck_assert(root_cpu("9:name=systemd:/\n4:memory:/job/1\n1:cpu:/\n0::/\n"));
	ck_assert(root_cpu("5:cpu,cpuacct:/\n3:cpuset:/x\n"));
	ck_assert(!root_cpu("1:cpu:/batch\n0::/\n"));
	ck_assert(!root_cpu("5:cpuacct,cpu:/user.slice\n"));
	/* cpuset and cpuacct are other controllers: without a cpu line the
	 * v2 line decides, and v2/ has no hierarchy yet. */
	ck_assert(!root_cpu("3:cpuset:/\n2:cpuacct:/\n0::/\n"));
	ck_assert_int_eq(um_fx_file(&fx, "v2/cgroup.controllers", "cpuset io memory pids\n"), 0);
	ck_assert(root_cpu("3:cpuset:/x\n2:cpuacct:/y\n0::/\n"));
}
END_TEST

START_TEST(v2)
{
	static const char *const tree[][2] = {
		{ "v2/cgroup.controllers", "cpuset cpu io memory pids\n" },
		{ "v2/system.slice/cgroup.controllers", "memory pids\n" },
		{ "v2/system.slice/m.mount/cgroup.controllers", "" },
		{ "v2/user.slice/cgroup.controllers", "cpu memory\n" },
		{ "v2/user.slice/u.service/cgroup.controllers", "memory\n" },
	};

	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		ck_assert_int_eq(um_fx_file(&fx, tree[i][0], tree[i][1]), 0);
	ck_assert(root_cpu("0::/\n"));
	/* No cpu controller enabled below the root on the way: the root
	 * task group, where autogroups count. */
	ck_assert(root_cpu("0::/system.slice/m.mount\n"));
	ck_assert(root_cpu("0::/system.slice\n"));
	/* Enabled for an ancestor: that ancestor's group. */
	ck_assert(!root_cpu("0::/user.slice/u.service\n"));
	ck_assert(!root_cpu("0::/user.slice\n"));
	/* A cgroup that cannot be read: unsure. */
	ck_assert(!root_cpu("0::/gone/away\n"));
	/* No v2 line, nothing parsable. */
	ck_assert(!root_cpu(""));
	ck_assert(!root_cpu("garbage\n"));
}
END_TEST

START_TEST(v2_not_mounted)
{
	/* v2/ missing: the v2 line cannot be checked. */
	ck_assert(!root_cpu("0::/\n"));
	ck_assert(!root_cpu("0::/system.slice\n"));
}
END_TEST

static Suite *nice_suite(void)
{
	Suite *s = suite_create("nice");
	TCase *tc = tcase_create("um_sched_root_cpu_cgroup()");

	tcase_add_unchecked_fixture(tc, um_fx_base_setup, um_fx_base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, v1);
	tcase_add_test(tc, v2);
	tcase_add_test(tc, v2_not_mounted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return um_fx_run(nice_suite());
}
