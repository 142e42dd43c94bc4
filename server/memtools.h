/*
 * memtools.h — is a memory tool watching?  IO_ASAN: built with AddressSanitizer
 * (GCC's __SANITIZE_ADDRESS__, or clang's __has_feature for the fuzz targets);
 * ON_VALGRIND(): running under valgrind.  One copy for the allocator tuning
 * and the record pool, so a compiler's new spelling is learnt once.
 */
#ifndef SRV_MEMTOOLS_H
#define SRV_MEMTOOLS_H

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ON_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef ON_VALGRIND
#define ON_VALGRIND() 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define IO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IO_ASAN 1
#endif
#endif

#endif
