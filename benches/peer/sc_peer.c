/* The peer library of the benchmarks: one function in a shared object
 * (libsc_peer.so, built by benches/build.rs with the machine's C compiler
 * and linked with an rpath), called from the benchmark binary through the
 * PLT (`plt-call`) and through its GOT entry (`got-call`). Its body is the
 * body of every 1-argument target of the suite: x + 1. */
#include <stdint.h>

uint64_t sc_peer_add1(uint64_t x) { return x + 1; }
