/*
 * Allocation wrappers that never return NULL: running out of memory is
 * fatal, so callers need no error path for it.
 */
#ifndef POSTERN_XMALLOC_H
#define POSTERN_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	*xmemdup(const void *, size_t);

/* Frees *pp and sets it to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)
/* Wipes then frees a secret string. */
void	 xfree_secret(char **);

#endif
