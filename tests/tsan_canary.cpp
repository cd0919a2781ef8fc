// A data race that ThreadSanitizer must report: .ci/run builds and runs it first, so that the
// ThreadSanitizer stage cannot pass because the sanitizer or Archer was not in effect. The
// second loop, the same sum as an OpenMP reduction, must not be reported (Archer tells TSan
// about OpenMP's synchronisation).
#include <cstdio>

int main() {
    long safe = 0;
#pragma omp parallel for num_threads(2) reduction(+ : safe)
    for (int i = 0; i < 100000; ++i) safe += i;
    long racy = 0;
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 100000; ++i) racy += i;  // every thread writes racy unsynchronised
    std::printf("%ld %ld\n", safe, racy);
}
