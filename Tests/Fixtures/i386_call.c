// Makes a system call through the i386 ABI (int 0x80: getpid, number 20) from a 64-bit
// program, which Corral's standard filter refuses as a foreign ABI.
#include <stdio.h>
int main(void) {
#if defined(__x86_64__)
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(20L) : "memory");
    printf("%ld\n", result);
    return 0;
#else
    return 3;
#endif
}
