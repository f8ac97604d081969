/* A module whose optimised code depends on its profile: the branch the training takes is laid out hot. */
#include <stdio.h>

static int step(int value, int round) {
    if (round % 5 == 0)
        return value * 3 + round;
    if (round % 7 == 0)
        return value - round;
    return value ^ round;
}

int main(void) {
    int value = 1;
    for (int round = 0; round < 100000; round++)
        value = step(value, round);
    printf("%d\n", value);
    return 0;
}
