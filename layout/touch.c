/*
 * touch.c — which 64-byte lines of a binary a run read or executed.
 *
 * Reads valgrind lackey's --trace-mem=yes output on stdin ("I  addr,size",
 * " L addr,size", " S ...", " M ...", one access a line; hundreds of
 * millions of lines for a short run, hence C) and prints the byte ranges
 * (offsets from BASE, in hex, "first last" a line) that were touched inside
 * [BASE, BASE + SIZE).  Exact to the byte: glibc's small functions sit
 * 16 bytes apart, and a coarser grain would call a function's neighbours
 * hot.  layout/order.py turns the ranges into the link order.
 *
 *   valgrind --tool=lackey --trace-mem=yes --log-fd=9 BINARY ... \
 *       9> >(touch BASE SIZE > touched.txt)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: touch BASE SIZE < lackey-trace > offsets\n");
        return 2;
    }
    uint64_t base = strtoull(argv[1], NULL, 0);
    uint64_t size = strtoull(argv[2], NULL, 0);
    if (size == 0 || size > (1u << 30)) {
        fprintf(stderr, "touch: SIZE must be 1 byte .. 1 GiB\n");
        return 2;
    }
    unsigned char *seen = calloc((size_t)(size / 8) + 1, 1);  /* a bit a byte */
    if (seen == NULL) {
        perror("touch");
        return 1;
    }
    char buf[256];
    uint64_t accesses = 0, inside = 0;
    while (fgets(buf, sizeof(buf), stdin) != NULL) {
        char *p = buf;
        while (*p == ' ')
            p++;
        if ((*p != 'I' && *p != 'L' && *p != 'S' && *p != 'M') || p[1] != ' ')
            continue;                       /* valgrind's own messages */
        p += 2;
        while (*p == ' ')
            p++;
        char *end;
        uint64_t addr = strtoull(p, &end, 16);
        if (end == p || *end != ',')
            continue;
        uint64_t len = strtoull(end + 1, NULL, 10);
        accesses++;
        if (addr < base || addr - base >= size)
            continue;
        inside++;
        for (uint64_t b = addr - base; b < addr - base + len && b < size; b++)
            seen[b / 8] |= (unsigned char)(1u << (b % 8));
    }
    for (uint64_t b = 0; b < size;) {
        if (!(seen[b / 8] & (1u << (b % 8)))) {
            b++;
            continue;
        }
        uint64_t first = b;
        while (b < size && (seen[b / 8] & (1u << (b % 8))))
            b++;
        printf("%llx %llx\n", (unsigned long long)first, (unsigned long long)(b - 1));
    }
    fprintf(stderr, "touch: %llu accesses, %llu inside the binary\n",
            (unsigned long long)accesses, (unsigned long long)inside);
    free(seen);
    return 0;
}
