/* A module whose optimised code depends on its profile: the branch the training takes is laid out hot. */
#include <stdio.h>

static int step(int value, int round) {
    if (round % 5 == 0)
        return value * 3 + round;
    if (round % 7 == 0)
        return value - round;
    return value ^ round;
}

/* Also what the training calls in-process (through ctypes, from libtiny.so), as CPython's tests call
   the interpreter's own code. */
int tiny_train(int rounds) {
    int value = 1;
    for (int round = 0; round < rounds; round++)
        value = step(value, round);
    return value;
}

int main(void) {
    printf("%d\n", tiny_train(100000));
    return 0;
}
