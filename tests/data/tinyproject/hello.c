/* The tiny project's program: its debug info records the compilation directory. */
#include <stdio.h>

int main(void) {
    printf("hello from %s\n", __FILE__);
    return 0;
}
