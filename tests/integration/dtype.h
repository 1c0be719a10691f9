/* The one-letter d_type code the helpers print (treedump's format,
 * which seekdir -p shares so scripts can compare the two). */
#ifndef UM_ITEST_DTYPE_H
#define UM_ITEST_DTYPE_H

#include <dirent.h>

static inline char dtype_char(unsigned char t)
{
	switch (t) {
	case DT_REG: return 'f';
	case DT_DIR: return 'd';
	case DT_LNK: return 'l';
	case DT_CHR: return 'c';
	case DT_BLK: return 'b';
	case DT_FIFO: return 'p';
	case DT_SOCK: return 's';
	case DT_UNKNOWN: return 'u';
	}
	return '?';
}

#endif
