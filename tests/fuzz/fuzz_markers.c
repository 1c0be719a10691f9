/* Fuzz target: the on-disk marker decoders (marker.h), each fed the whole
 * input as an xattr value and held to the format as man/unionmount.8 (ON-
 * DISK FORMAT) writes it down, through a reference decoder written here
 * from that text alone; plus um_marker_fallthru_layer() on a struct stat
 * made of the input's first bytes. No I/O: the getters only read the
 * value and hand it to these. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "config.h"
#include "fuzz.h"
#include "marker.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* origin, complete: exactly 16 hex digits. */
static void check_hex64(const char *buf, size_t len)
{
	uint64_t got = 0x5a5a5a5a5a5a5a5aull, want = 0;
	bool valid = len == 16;
	int r;

	for (size_t i = 0; valid && i < len; i++) {
		valid = hex_value(buf[i]) >= 0;
		want = want << 4 | (uint64_t)(valid ? hex_value(buf[i]) : 0);
	}
	r = um_marker_decode_hex64(buf, len, &got);
	FUZZ_CHECK(r == 0 || r == -EIO);
	FUZZ_CHECK((r == 0) == valid);
	if (valid) {
		char again[17];

		FUZZ_CHECK(got == want);
		/* What the setter writes for it is the input, up to case. */
		(void)snprintf(again, sizeof(again), "%016llx", (unsigned long long)got);
		FUZZ_CHECK(!strncasecmp(again, buf, 16));
	} else {
		FUZZ_CHECK(got == 0x5a5a5a5a5a5a5a5aull); /* untouched on failure */
	}
}

/* lowerlinks, format: decimal digits only, at most max. */
static void check_uint(const char *buf, size_t len, uint64_t max)
{
	uint64_t got = 12345, want = 0;
	bool valid = len > 0;
	int r;

	for (size_t i = 0; valid && i < len; i++) {
		unsigned d = (unsigned)(buf[i] - '0');

		valid = is_digit(buf[i]) && d <= max && want <= (max - d) / 10;
		want = want * 10 + d;
	}
	r = um_marker_decode_uint(buf, len, max, &got);
	FUZZ_CHECK(r == 0 || r == -EIO);
	FUZZ_CHECK((r == 0) == valid);
	if (valid)
		FUZZ_CHECK(got == want && got <= max);
	else
		FUZZ_CHECK(got == 12345);
}

/* redirect: absolute, with no ".." component; or one plain name. */
static void check_redirect(const char *buf, size_t len)
{
	bool valid = len > 0 && !memchr(buf, '\0', len);
	int r;

	if (valid && buf[0] == '/') {
		size_t start = 1;

		for (size_t i = 1; i <= len && valid; i++)
			if (i == len || buf[i] == '/') {
				valid = !(i - start == 2 && buf[start] == '.' && buf[start + 1] == '.');
				start = i + 1;
			}
	} else if (valid) {
		valid = !memchr(buf, '/', len) && !(len == 1 && buf[0] == '.') &&
			!(len == 2 && buf[0] == '.' && buf[1] == '.');
	}
	r = um_marker_decode_redirect(buf, len);
	FUZZ_CHECK(valid ? r == (int)len : r == -EIO);
}

/* A mode and a device number from the input's first 12 bytes. */
static void check_fallthru(const uint8_t *data, size_t size)
{
	struct stat st = { 0 };
	uint32_t mode = 0;
	uint64_t rdev = 0;
	unsigned layer;

	if (size < 12)
		return;
	memcpy(&mode, data, sizeof(mode));
	memcpy(&rdev, data + 4, sizeof(rdev));
	/* Half the time a character device, or the mode bits rarely hit it. */
	st.st_mode = mode & 1 ? (mode_t)(S_IFCHR | (mode & 07777)) : (mode_t)mode;
	st.st_rdev = (dev_t)rdev;

	layer = um_marker_fallthru_layer(&st);
	if (layer) {
		FUZZ_CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 0);
		FUZZ_CHECK(layer <= UM_FALLTHRU_MINOR_MAX - UM_FALLTHRU_MINOR_BASE);
		FUZZ_CHECK(minor(um_marker_fallthru_dev(layer)) == minor(st.st_rdev));
		FUZZ_CHECK(!um_marker_is_whiteout(&st));
	}
	if (um_marker_is_whiteout(&st))
		FUZZ_CHECK(layer == 0);

	/* And the way back, for every layer a union can have. */
	layer = 1 + (unsigned)(rdev % UM_MAX_LOWER);
	st.st_mode = S_IFCHR;
	st.st_rdev = um_marker_fallthru_dev(layer);
	FUZZ_CHECK(um_marker_fallthru_layer(&st) == layer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	FUZZ_CHECK(um_marker_decode_flag(buf, size) == (size == 1 && buf[0] == 'y'));
	check_hex64(buf, size);
	check_uint(buf, size, 65535); /* lowerlinks */
	check_uint(buf, size, UINT64_MAX); /* format */
	check_uint(buf, size, 0);
	check_redirect(buf, size);
	check_fallthru(data, size);
	return 0;
}
