/* Runs inputs through a fuzz target's LLVMFuzzerTestOneInput without
 * libFuzzer, so that the committed corpus is replayed by `meson test` in
 * every build (gcc, clang, ASan+UBSan) and a reproducer can be rerun
 * anywhere:
 *   replay_NAME PATH...   each PATH a file, or a directory whose files
 *                         (names not starting with '.') all run, in order
 * Exit status 0 when every input ran, 1 when one could not be read or
 * none was found (a corpus that went missing must not pass as empty). A
 * broken property aborts in the target itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Reads dirfd/name into a buffer of exactly its size, so that ASan sees
 * any read past the input's end. */
static int run_file(int dirfd, const char *name, const char *shown)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t size, got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	int r = -1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", shown, strerror(errno));
		goto out;
	}
	size = (size_t)st.st_size;
	data = malloc(size ? size : 1);
	if (!data) {
		fprintf(stderr, "replay: %s: out of memory\n", shown);
		goto out;
	}
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);

		if (n <= 0) {
			fprintf(stderr, "replay: %s: %s\n", shown, n < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		got += (size_t)n;
	}
	/* Named before it runs: a crash report then says which input. */
	fprintf(stderr, "replay: %s\n", shown);
	(void)LLVMFuzzerTestOneInput(data, size);
	r = 0;
out:
	free(data);
	if (fd >= 0)
		(void)close(fd);
	return r;
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int run_dir(const char *path, size_t *count)
{
	struct dirent **names = NULL;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int n = dfd < 0 ? -1 : scandir(path, &names, visible, alphasort);
	int r = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		r = -1;
	}
	for (int i = 0; i < n; i++) {
		char shown[4096];

		(void)snprintf(shown, sizeof(shown), "%s/%s", path, names[i]->d_name);
		if (r == 0 && run_file(dfd, names[i]->d_name, shown) < 0)
			r = -1;
		else if (r == 0)
			(*count)++;
		free(names[i]);
	}
	free(names);
	if (dfd >= 0)
		(void)close(dfd);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			r = run_dir(argv[i], &count);
		} else {
			r = run_file(AT_FDCWD, argv[i], argv[i]);
			count += r == 0;
		}
		if (r < 0)
			return 1;
	}
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("%zu inputs replayed\n", count);
	return 0;
}
