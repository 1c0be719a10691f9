/* deny CALL=ERRNO[,CALL=ERRNO...] PROGRAM [ARG...]: runs PROGRAM where
 * the named system calls fail with the given errno (EPERM or ENOSYS), as
 * on an older kernel (ENOSYS), under kernel.io_uring_disabled=2, or
 * under a container's seccomp profile that does not know a call (EPERM).
 * The machine's settings are left alone: only PROGRAM and its children
 * are filtered. CALL is one of the names below; the newer ones are given
 * by number, which older headers lack (one number on every architecture
 * this filter is built for). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#define MAX_RULES 16

static const struct {
	const char *name;
	long nr;
} calls[] = {
	{ "io_uring_setup", 425 }, { "fchmodat2", 452 },   { "setxattrat", 463 },
	{ "getxattrat", 464 },	   { "listxattrat", 465 }, { "removexattrat", 466 },
};

static const struct {
	const char *name;
	int err;
} errnos[] = { { "EPERM", EPERM }, { "ENOSYS", ENOSYS } };

static int usage(void)
{
	fprintf(stderr, "usage: deny CALL=ERRNO[,CALL=ERRNO...] PROGRAM [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
#ifdef ARCH
	struct sock_filter code[4 + 2 * MAX_RULES + 1];
	size_t n = 0, nrules = 0;
	long nr[MAX_RULES];
	int err[MAX_RULES];
	char *spec, *save = NULL;

	if (argc < 3)
		return usage();
	spec = argv[1];
	for (char *rule = strtok_r(spec, ",", &save); rule; rule = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(rule, '=');
		size_t i, j;

		if (!eq || nrules == MAX_RULES)
			return usage();
		*eq = '\0';
		for (i = 0; i < sizeof(calls) / sizeof(calls[0]) && strcmp(calls[i].name, rule); i++)
			;
		for (j = 0; j < sizeof(errnos) / sizeof(errnos[0]) && strcmp(errnos[j].name, eq + 1); j++)
			;
		if (i == sizeof(calls) / sizeof(calls[0]) || j == sizeof(errnos) / sizeof(errnos[0])) {
			fprintf(stderr, "deny: unknown call or errno in '%s=%s'\n", rule, eq + 1);
			return 2;
		}
		nr[nrules] = calls[i].nr;
		err[nrules++] = errnos[j].err;
	}
	if (nrules == 0)
		return usage();
	/* For the native ABI only: a 32-bit program PROGRAM runs would pass
	 * (the daemon and unionctl are native). */
	code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0);
	code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (size_t k = 0; k < nrules; k++) {
		code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr[k], 0, 1);
		code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err[k]);
	}
	code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

	struct sock_fprog prog = { .len = (unsigned short)n, .filter = code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("deny: seccomp");
		return 1;
	}
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "deny: no seccomp filter for this architecture\n");
	return 77;
#endif
}
