// bench_kernels — the kernels at the shapes of the reference U-Net (batch 64, 28x28,
// docs/unet.md), with Google Benchmark.
//
// Every benchmark first checks its result against the scalar reference (kernels/reference.hpp
// and the ref:: paths, run in double) with the tolerance of the tests; a wrong result is
// reported as the benchmark's error (Google Benchmark's SkipWithError: the message is in the
// output, JSON included, and the other benchmarks still run); then it times. Rates are
// counters: FLOPS (2 per multiply-add) or bytes per second. Threaded kernels use real time.
// Beside each kernel runs its scalar reference (in float, one thread: what DDPMKIT_NO_SIMD
// builds run), and fma_peak measures what the chip's FMA units do at most, so that every
// FLOPS figure can be read as a share of it.
//
//   bench_kernels                                   all of them, 2 threads (OMP_NUM_THREADS)
//   bench_kernels --benchmark_filter=conv           one family
//   bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_kernels --benchmark_format=json > kernels.json
//
// Families: fma_peak; gemm/<ours|eigen|scalar>/M/N/K (conv-as-GEMM shapes of one image:
// M = O, K = 9 C, N = H W; and the Linear layers' shapes);
// conv3x3_{fwd,bwd_data,bwd_weight}/<ours|im2col|scalar>/C/O/HW (batch 64; ours is Winograd
// where the library picks it); conv1x1_* and conv3x3s2_* (stride 2) likewise, ours|scalar;
// group_norm{,_silu}_{fwd,bwd}/<ours|scalar>/C/HW; add, sum_hw, softmax/<ours|scalar> (the
// elementwise add of a residual, the per-channel sums of a bias gradient, the attention's
// softmax rows); permute, upsample, upsample_bwd/<ours|scalar>; adam/<ours|scalar> (1,623,169
// parameters); and whole layers, float beside double (the reference kernels):
// {linear,resblock,attention,unet}_{fwd,fwd_bwd}/<ours|scalar>/B, the last the reference
// U-Net's forward and backward pass.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"

// Eigen includes <immintrin.h>, whose AVX-512 intrinsics trip GCC 12's false
// -Wmaybe-uninitialized (GCC bug 105593; the state at the header's lines counts).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop
#else
#include <Eigen/Core>
#endif

using namespace ddpmkit;

namespace {

constexpr int64_t kBatch = 64;

std::vector<float> random_floats(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    std::vector<float> v(static_cast<size_t>(n));
    Rng rng(seed);
    rng.uniform(v.data(), n, lo, hi);
    return v;
}
std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }
template <class T>
T* no() {  // a gradient not asked for
    return nullptr;
}

// The tests' tolerance (docs/testing.md), |got - want| <= 1e-5 + 1.3e-6 k |want| with k the reduction
// length, with |want| at least the root mean square of all of want: a sum of k products that
// cancels to nearly 0 keeps the rounding error of its terms. Returns what is wrong, or "".
std::string close_error(const char* what, const float* got, const double* want, int64_t n, double k) {
    double rms = 0;
    for (int64_t i = 0; i < n; ++i) rms += want[i] * want[i];
    rms = std::sqrt(rms / static_cast<double>(std::max<int64_t>(n, 1)));
    for (int64_t i = 0; i < n; ++i) {
        const double err = std::abs(got[i] - want[i]), allowed = 1e-5 + 1.3e-6 * k * std::max(std::abs(want[i]), rms);
        if (!(err <= allowed)) {
            char message[256];
            std::snprintf(message, sizeof message, "%s is wrong at element %lld: got %.9g, want %.9g (allowed error %.3g)", what,
                          static_cast<long long>(i), double(got[i]), want[i], allowed);
            return message;
        }
    }
    return "";
}

// Reports a failed check as the benchmark's error: true when the benchmark must return untimed.
bool wrong(benchmark::State& st, const std::string& error) {
    if (error.empty()) return false;
    st.SkipWithError(error.c_str());
    return true;
}

void set_rate(benchmark::State& st, const char* name, double per_iteration) {
    st.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}

// Which code a benchmark times: what the library runs, the im2col path where the library runs
// Winograd, or the scalar reference in float (kernels/reference.hpp and the ref:: paths).
enum class Path { ours, im2col, scalar };

// Runs the case once, checks what it computed, then times it: every kernel benchmark below. A
// case has run(Path) (which also clears what the kernel accumulates into) and check(Path).
template <class Case>
void bench(benchmark::State& st, Case& c, Path path, const char* counter, double per_iteration) {
    c.run(path);
    if (wrong(st, c.check(path))) return;
    for (auto _ : st) {
        c.run(path);
        benchmark::ClobberMemory();
    }
    set_rate(st, counter, per_iteration);
}

// ---------------------------------------------------------------- the FMA peak
// Independent fused multiply-adds on registers only, on every thread: the most the chip's FMA
// units do (2 FLOPs per lane), against which every FLOPS figure here can be read.

constexpr int kFmaChains = 12;  // independent chains, more than latency x units (4 x 2) needs

float fma_chains(int64_t n) {
    simd::vfloat acc[kFmaChains];
    for (int c = 0; c < kFmaChains; ++c) acc[c] = simd::set1(1e-3f * static_cast<float>(c));
    const simd::vfloat a = simd::set1(0.999f), b = simd::set1(1e-4f);
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < kFmaChains; ++c) acc[c] = simd::fmadd(acc[c], a, b);
    for (int c = 1; c < kFmaChains; ++c) acc[0] = simd::add(acc[0], acc[c]);
    return simd::reduce_add(acc[0]);
}

void BM_fma_peak(benchmark::State& st) {
    const int64_t n = 1 << 18;
    const int threads = num_threads();
    std::vector<float> sums(static_cast<size_t>(threads));
    for (auto _ : st) {
        parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) sums[static_cast<size_t>(t)] = fma_chains(n);
        });
        benchmark::DoNotOptimize(sums.data());
    }
    set_rate(st, "FLOPS", 2.0 * kFmaChains * simd::kWidth * static_cast<double>(n) * threads);
}

BENCHMARK(BM_fma_peak)->Name("fma_peak")->UseRealTime();

// ---------------------------------------------------------------- GEMM
// C [M, N] = A [M, K] B [K, N], row-major.

struct GemmCase {
    int64_t M, N, K;
    std::vector<float> A, B, C;
    GemmCase(int64_t m, int64_t n, int64_t k)
        : M(m), N(n), K(k), A(random_floats(m * k, 1)), B(random_floats(k * n, 2)), C(static_cast<size_t>(m * n)) {}
    std::string check(const char* what) const {
        const std::vector<double> Ad = to_double(A), Bd = to_double(B);
        std::vector<double> Cd(C.size());
        kernels::ref::gemm(false, false, M, N, K, 1.0, Ad.data(), K, Bd.data(), N, 0.0, Cd.data(), N);
        return close_error(what, C.data(), Cd.data(), M * N, static_cast<double>(K));
    }
};

void BM_gemm_ours(benchmark::State& st) {
    GemmCase g(st.range(0), st.range(1), st.range(2));
    auto run = [&] {
        kernels::gemm(false, false, g.M, g.N, g.K, 1.0f, g.A.data(), g.K, g.B.data(), g.N, 0.0f, g.C.data(), g.N);
    };
    run();
    if (wrong(st, g.check("gemm (ours)"))) return;
    for (auto _ : st) {
        run();
        benchmark::DoNotOptimize(g.C.data());
    }
    set_rate(st, "FLOPS", 2.0 * g.M * g.N * g.K);
}

using EigenRowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void BM_gemm_eigen(benchmark::State& st) {
    GemmCase g(st.range(0), st.range(1), st.range(2));
    Eigen::Map<const EigenRowMajor> A(g.A.data(), g.M, g.K), B(g.B.data(), g.K, g.N);
    Eigen::Map<EigenRowMajor> C(g.C.data(), g.M, g.N);
    C.noalias() = A * B;
    if (wrong(st, g.check("gemm (Eigen)"))) return;
    for (auto _ : st) {
        C.noalias() = A * B;
        benchmark::DoNotOptimize(g.C.data());
    }
    set_rate(st, "FLOPS", 2.0 * g.M * g.N * g.K);
}

void BM_gemm_scalar(benchmark::State& st) {
    GemmCase g(st.range(0), st.range(1), st.range(2));
    auto run = [&] {
        kernels::ref::gemm(false, false, g.M, g.N, g.K, 1.0f, g.A.data(), g.K, g.B.data(), g.N, 0.0f, g.C.data(), g.N);
    };
    run();
    if (wrong(st, g.check("gemm (scalar reference)"))) return;
    for (auto _ : st) {
        run();
        benchmark::DoNotOptimize(g.C.data());
    }
    set_rate(st, "FLOPS", 2.0 * g.M * g.N * g.K);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
    // one image's 3x3 convolution as a GEMM: M = O, N = H W, K = 9 C (C = O, and 128 -> 64)
    for (int64_t n : {784, 196, 49})
        for (int64_t m : {32, 64, 128}) b->Args({m, n, 9 * m});
    b->Args({64, 49, 9 * 128});
    b->Args({64, 64 * 49, 9 * 64});  // 64 images of 7x7 side by side
    // Linear: time MLP [64, 32] x [32, 128], [64, 128] x [128, 128]; per-block [64, 128] x [128, 64]
    b->Args({64, 128, 32});
    b->Args({64, 128, 128});
    b->Args({64, 64, 128});
    b->ArgNames({"M", "N", "K"});
}

BENCHMARK(BM_gemm_ours)->Name("gemm/ours")->Apply(gemm_shapes)->UseRealTime();
BENCHMARK(BM_gemm_eigen)->Name("gemm/eigen")->Apply(gemm_shapes)->UseRealTime();
BENCHMARK(BM_gemm_scalar)->Name("gemm/scalar")->Args({32, 196, 288})->ArgNames({"M", "N", "K"})->UseRealTime();

// ---------------------------------------------------------------- 3x3 convolution
// The reference's layers: C -> O at HxW, padding 1, batch 64. The library runs Winograd's
// F(2x2, 3x3) on all of them; im2col is the GEMM path it runs on other convolutions.

enum class ConvPass { forward, input_gradient, weight_gradient };

struct ConvCase {
    ConvPass pass;
    kernels::ConvGeometry g;
    std::vector<float> x, w, b, y, dy, dx, dw, db;
    // A k x k convolution (padding k / 2) of C -> O channels on HW x HW images.
    ConvCase(ConvPass p, int64_t C, int64_t O, int64_t HW, int64_t k = 3, int64_t stride = 1)
        : pass(p),
          g{C, HW, HW, O, k, k, stride, k / 2},
          x(random_floats(kBatch * C * HW * HW, 1)),
          w(random_floats(O * C * k * k, 2, -0.1, 0.1)),
          b(random_floats(O, 3)),
          y(static_cast<size_t>(kBatch * O * g.Ho() * g.Wo())),
          dy(random_floats(kBatch * O * g.Ho() * g.Wo(), 4)),
          dx(x.size()),
          dw(w.size()),
          db(b.size()) {}
    double flops() const { return 2.0 * kBatch * g.O * g.K() * g.Ho() * g.Wo(); }

    void run(Path path) {
        switch (pass) {
            case ConvPass::forward:
                if (path == Path::scalar) kernels::ref::conv2d_forward(x.data(), kBatch, w.data(), b.data(), g, y.data());
                else if (path == Path::im2col) kernels::conv_detail::forward(x.data(), kBatch, w.data(), b.data(), g, y.data(), nullptr);
                else kernels::conv2d_forward(x.data(), kBatch, w.data(), b.data(), g, y.data());
                break;
            case ConvPass::input_gradient:  // dx accumulates
                std::fill(dx.begin(), dx.end(), 0.0f);
                if (path == Path::scalar) kernels::ref::conv2d_backward(x.data(), kBatch, w.data(), g, dy.data(), dx.data(), no<float>(), no<float>());
                else if (path == Path::im2col) kernels::conv_detail::backward_data(kBatch, w.data(), g, dy.data(), dx.data(), true);
                else kernels::conv2d_backward(x.data(), kBatch, w.data(), g, dy.data(), dx.data(), no<float>(), no<float>());
                break;
            case ConvPass::weight_gradient:  // dw and db accumulate (im2col computes dw only)
                std::fill(dw.begin(), dw.end(), 0.0f);
                std::fill(db.begin(), db.end(), 0.0f);
                if (path == Path::scalar) kernels::ref::conv2d_backward(x.data(), kBatch, w.data(), g, dy.data(), no<float>(), dw.data(), db.data());
                else if (path == Path::im2col) kernels::conv_detail::backward_weight(x.data(), kBatch, g, dy.data(), dw.data());
                else kernels::conv2d_backward(x.data(), kBatch, w.data(), g, dy.data(), no<float>(), dw.data(), db.data());
                break;
        }
    }

    std::string check(Path path) const {
        const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
        if (pass == ConvPass::forward) {
            std::vector<double> yd(y.size());
            kernels::ref::conv2d_forward(xd.data(), kBatch, wd.data(), bd.data(), g, yd.data());
            return close_error("conv2d_forward", y.data(), yd.data(), static_cast<int64_t>(yd.size()), static_cast<double>(g.K()));
        }
        if (pass == ConvPass::input_gradient) {
            std::vector<double> dxd(dx.size());
            kernels::ref::conv2d_backward(xd.data(), kBatch, wd.data(), g, dyd.data(), dxd.data(), no<double>(), no<double>());
            return close_error("conv2d_backward (data)", dx.data(), dxd.data(), static_cast<int64_t>(dxd.size()), static_cast<double>(g.O * g.kh * g.kw));
        }
        std::vector<double> dwd(dw.size()), dbd(db.size());
        kernels::ref::conv2d_backward(xd.data(), kBatch, wd.data(), g, dyd.data(), no<double>(), dwd.data(), dbd.data());
        const double k = static_cast<double>(kBatch * g.Ho() * g.Wo());
        const std::string error = close_error("conv2d_backward (weight)", dw.data(), dwd.data(), static_cast<int64_t>(dwd.size()), k);
        if (!error.empty() || path == Path::im2col) return error;
        return close_error("conv2d_backward (bias)", db.data(), dbd.data(), static_cast<int64_t>(dbd.size()), k);
    }
};

template <ConvPass pass, Path path, int k = 3, int stride = 1>
void BM_conv(benchmark::State& st) {
    ConvCase c(pass, st.range(0), st.range(1), st.range(2), k, stride);
    bench(st, c, path, "FLOPS", c.flops());
}

void conv_layers(benchmark::internal::Benchmark* b) {
    b->Args({16, 16, 28})->Args({32, 32, 28})->Args({64, 64, 14})->Args({64, 64, 7})->Args({128, 64, 7});
    b->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
void one_conv_layer(benchmark::internal::Benchmark* b) {  // the scalar reference takes seconds per call
    b->Args({64, 64, 14})->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_conv<ConvPass::forward, Path::ours>)->Name("conv3x3_fwd/ours")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::ours>)->Name("conv3x3_bwd_data/ours")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::ours>)->Name("conv3x3_bwd_weight/ours")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::forward, Path::im2col>)->Name("conv3x3_fwd/im2col")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::im2col>)->Name("conv3x3_bwd_data/im2col")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::im2col>)->Name("conv3x3_bwd_weight/im2col")->Apply(conv_layers);
BENCHMARK(BM_conv<ConvPass::forward, Path::scalar>)->Name("conv3x3_fwd/scalar")->Apply(one_conv_layer);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::scalar>)->Name("conv3x3_bwd_data/scalar")->Apply(one_conv_layer);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::scalar>)->Name("conv3x3_bwd_weight/scalar")->Apply(one_conv_layer);

// The other convolutions of the U-Net, on im2col and the GEMM: 1x1 (a ResBlock's skip when the
// channels change: 96 -> 32 at 28x28 and 96 -> 64 at 14x14 after a concatenation; the
// attention's qkv, 64 -> 192 at 7x7) and 3x3 with stride 2 (Downsample; HW is the input's side).

void pointwise_layers(benchmark::internal::Benchmark* b) {
    b->Args({96, 32, 28})->Args({96, 64, 14})->Args({64, 192, 7});
    b->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
void one_pointwise_layer(benchmark::internal::Benchmark* b) {
    b->Args({96, 64, 14})->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
void downsample_layers(benchmark::internal::Benchmark* b) {
    b->Args({32, 32, 28})->Args({64, 64, 14});
    b->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
void one_downsample_layer(benchmark::internal::Benchmark* b) {
    b->Args({64, 64, 14})->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_conv<ConvPass::forward, Path::ours, 1>)->Name("conv1x1_fwd/ours")->Apply(pointwise_layers);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::ours, 1>)->Name("conv1x1_bwd_data/ours")->Apply(pointwise_layers);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::ours, 1>)->Name("conv1x1_bwd_weight/ours")->Apply(pointwise_layers);
BENCHMARK(BM_conv<ConvPass::forward, Path::scalar, 1>)->Name("conv1x1_fwd/scalar")->Apply(one_pointwise_layer);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::scalar, 1>)->Name("conv1x1_bwd_data/scalar")->Apply(one_pointwise_layer);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::scalar, 1>)->Name("conv1x1_bwd_weight/scalar")->Apply(one_pointwise_layer);
BENCHMARK(BM_conv<ConvPass::forward, Path::ours, 3, 2>)->Name("conv3x3s2_fwd/ours")->Apply(downsample_layers);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::ours, 3, 2>)->Name("conv3x3s2_bwd_data/ours")->Apply(downsample_layers);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::ours, 3, 2>)->Name("conv3x3s2_bwd_weight/ours")->Apply(downsample_layers);
BENCHMARK(BM_conv<ConvPass::forward, Path::scalar, 3, 2>)->Name("conv3x3s2_fwd/scalar")->Apply(one_downsample_layer);
BENCHMARK(BM_conv<ConvPass::input_gradient, Path::scalar, 3, 2>)->Name("conv3x3s2_bwd_data/scalar")->Apply(one_downsample_layer);
BENCHMARK(BM_conv<ConvPass::weight_gradient, Path::scalar, 3, 2>)->Name("conv3x3s2_bwd_weight/scalar")->Apply(one_downsample_layer);

// ---------------------------------------------------------------- GroupNorm (+ SiLU)
// 8 groups, batch 64; forward reads x and writes y, backward reads x, dy and writes dx.

struct NormCase {
    bool silu, backward;
    int64_t C, HW, G = 8;
    std::vector<float> x, gamma, beta, y, mean, rstd, dy, dx, dgamma, dbeta;
    NormCase(bool with_silu, bool backward_pass, int64_t c, int64_t hw)
        : silu(with_silu),
          backward(backward_pass),
          C(c),
          HW(hw),
          x(random_floats(kBatch * c * hw, 1, -2.0, 3.0)),
          gamma(random_floats(c, 2, 0.5, 1.5)),
          beta(random_floats(c, 3)),
          y(x.size()),
          mean(static_cast<size_t>(kBatch * G)),
          rstd(mean.size()),
          dy(random_floats(kBatch * c * hw, 4)),
          dx(x.size()),
          dgamma(gamma.size()),
          dbeta(beta.size()) {
        if (backward) forward(Path::ours);  // the statistics the backward pass reads
    }
    int64_t n() const { return kBatch * C * HW; }

    void forward(Path path) {
        const bool ref = path == Path::scalar;
        if (silu && ref) kernels::ref::group_norm_silu_forward(x.data(), kBatch, C, HW, G, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data());
        else if (silu) kernels::group_norm_silu_forward(x.data(), kBatch, C, HW, G, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data());
        else if (ref) kernels::ref::group_norm_forward(x.data(), kBatch, C, HW, G, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data());
        else kernels::group_norm_forward(x.data(), kBatch, C, HW, G, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(), rstd.data());
    }
    void run(Path path) {
        if (!backward) {
            forward(path);
            return;
        }
        std::fill(dx.begin(), dx.end(), 0.0f);  // the gradients accumulate
        std::fill(dgamma.begin(), dgamma.end(), 0.0f);
        std::fill(dbeta.begin(), dbeta.end(), 0.0f);
        const bool ref = path == Path::scalar;
        if (silu && ref) kernels::ref::group_norm_silu_backward(x.data(), dy.data(), kBatch, C, HW, G, gamma.data(), beta.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(), dbeta.data());
        else if (silu) kernels::group_norm_silu_backward(x.data(), dy.data(), kBatch, C, HW, G, gamma.data(), beta.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(), dbeta.data());
        else if (ref) kernels::ref::group_norm_backward(x.data(), dy.data(), kBatch, C, HW, G, gamma.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(), dbeta.data());
        else kernels::group_norm_backward(x.data(), dy.data(), kBatch, C, HW, G, gamma.data(), mean.data(), rstd.data(), dx.data(), dgamma.data(), dbeta.data());
    }

    std::string check(Path) const {
        const std::vector<double> xd = to_double(x), gd = to_double(gamma), bd = to_double(beta), dyd = to_double(dy);
        std::vector<double> yd(y.size()), md(mean.size()), rd(rstd.size()), dxd(dx.size()), dgd(static_cast<size_t>(C)), dbd(static_cast<size_t>(C));
        if (silu) kernels::ref::group_norm_silu_forward(xd.data(), kBatch, C, HW, G, gd.data(), bd.data(), 1e-5, yd.data(), md.data(), rd.data());
        else kernels::ref::group_norm_forward(xd.data(), kBatch, C, HW, G, gd.data(), bd.data(), 1e-5, yd.data(), md.data(), rd.data());
        const double k = static_cast<double>(C / G * HW);
        const std::string name = silu ? "group_norm_silu" : "group_norm";
        if (!backward) return close_error((name + "_forward").c_str(), y.data(), yd.data(), n(), k);
        if (silu) kernels::ref::group_norm_silu_backward(xd.data(), dyd.data(), kBatch, C, HW, G, gd.data(), bd.data(), md.data(), rd.data(), dxd.data(), dgd.data(), dbd.data());
        else kernels::ref::group_norm_backward(xd.data(), dyd.data(), kBatch, C, HW, G, gd.data(), md.data(), rd.data(), dxd.data(), dgd.data(), dbd.data());
        std::string error = close_error((name + "_backward (x)").c_str(), dx.data(), dxd.data(), n(), k);
        if (error.empty()) error = close_error((name + "_backward (gamma)").c_str(), dgamma.data(), dgd.data(), C, k * kBatch);
        if (error.empty()) error = close_error((name + "_backward (beta)").c_str(), dbeta.data(), dbd.data(), C, k * kBatch);
        return error;
    }
};

template <bool silu, bool backward, Path path>
void BM_norm(benchmark::State& st) {
    NormCase c(silu, backward, st.range(0), st.range(1));
    bench(st, c, path, "bytes", (backward ? 12.0 : 8.0) * c.n());
}

void norm_shapes(benchmark::internal::Benchmark* b) {
    b->Args({32, 28 * 28})->Args({64, 14 * 14})->Args({128, 7 * 7});
    b->ArgNames({"C", "HW"})->UseRealTime();
}
void one_norm_shape(benchmark::internal::Benchmark* b) { b->Args({32, 28 * 28})->ArgNames({"C", "HW"})->UseRealTime(); }

BENCHMARK(BM_norm<false, false, Path::ours>)->Name("group_norm_fwd/ours")->Apply(norm_shapes);
BENCHMARK(BM_norm<false, true, Path::ours>)->Name("group_norm_bwd/ours")->Apply(norm_shapes);
BENCHMARK(BM_norm<true, false, Path::ours>)->Name("group_norm_silu_fwd/ours")->Apply(norm_shapes);
BENCHMARK(BM_norm<true, true, Path::ours>)->Name("group_norm_silu_bwd/ours")->Apply(norm_shapes);
BENCHMARK(BM_norm<false, false, Path::scalar>)->Name("group_norm_fwd/scalar")->Apply(one_norm_shape);
BENCHMARK(BM_norm<false, true, Path::scalar>)->Name("group_norm_bwd/scalar")->Apply(one_norm_shape);
BENCHMARK(BM_norm<true, false, Path::scalar>)->Name("group_norm_silu_fwd/scalar")->Apply(one_norm_shape);
BENCHMARK(BM_norm<true, true, Path::scalar>)->Name("group_norm_silu_bwd/scalar")->Apply(one_norm_shape);

// ---------------------------------------------------------------- add, sums, softmax
// The residual add of a ResBlock at 32 channels, 28x28 (out = a + b); the per-channel sums
// over H W of a bias gradient (sum_axis, same input); the attention's softmax at 7x7: 64 images
// x 49 rows of 49.

struct ElementwiseCase {
    enum Kind { add, sum_hw, softmax } kind;
    Shape shape;
    std::vector<float> a, b, out;
    ElementwiseCase(Kind k, Shape s) : kind(k), shape(std::move(s)), a(random_floats(shape.numel(), 1, -4.0, 4.0)), b(random_floats(shape.numel(), 2)) {
        out.resize(static_cast<size_t>(kind == sum_hw ? shape.numel() / rows_len() : shape.numel()));
    }
    int64_t rows_len() const { return shape[shape.rank() - 1]; }  // H W for the sums, the row for softmax
    int64_t rows() const { return shape.numel() / rows_len(); }

    void run(Path path) {
        const bool ref = path == Path::scalar;
        switch (kind) {
            case add:
                if (ref) kernels::ref::broadcast_binary(kernels::BinaryOp::Add, a.data(), shape, b.data(), shape, out.data(), shape);
                else kernels::broadcast_binary(kernels::BinaryOp::Add, a.data(), shape, b.data(), shape, out.data(), shape);
                break;
            case sum_hw:
                if (ref) kernels::ref::sum_axis(a.data(), rows(), rows_len(), int64_t(1), out.data());
                else kernels::sum_axis(a.data(), rows(), rows_len(), int64_t(1), out.data());
                break;
            case softmax:
                if (ref) kernels::ref::softmax(a.data(), rows(), rows_len(), out.data());
                else kernels::softmax(a.data(), rows(), rows_len(), out.data());
                break;
        }
    }
    std::string check(Path) const {
        const std::vector<double> ad = to_double(a), bd = to_double(b);
        std::vector<double> want(out.size());
        if (kind == add) kernels::ref::broadcast_binary(kernels::BinaryOp::Add, ad.data(), shape, bd.data(), shape, want.data(), shape);
        if (kind == sum_hw) kernels::ref::sum_axis(ad.data(), rows(), rows_len(), int64_t(1), want.data());
        if (kind == softmax) kernels::ref::softmax(ad.data(), rows(), rows_len(), want.data());
        const char* name = kind == add ? "add" : kind == sum_hw ? "sum_axis" : "softmax";
        return close_error(name, out.data(), want.data(), static_cast<int64_t>(want.size()), kind == add ? 1.0 : static_cast<double>(rows_len()));
    }
    double bytes() const { return 4.0 * static_cast<double>(kind == add ? 3 * a.size() : a.size() + out.size()); }
};

template <ElementwiseCase::Kind kind, Path path>
void BM_elementwise(benchmark::State& st) {
    const Shape shape = kind == ElementwiseCase::softmax ? Shape{kBatch * 49, 49} : Shape{kBatch * 32, 28 * 28};
    ElementwiseCase c(kind, shape);
    bench(st, c, path, "bytes", c.bytes());
}

BENCHMARK(BM_elementwise<ElementwiseCase::add, Path::ours>)->Name("add/ours")->UseRealTime();
BENCHMARK(BM_elementwise<ElementwiseCase::add, Path::scalar>)->Name("add/scalar")->UseRealTime();
BENCHMARK(BM_elementwise<ElementwiseCase::sum_hw, Path::ours>)->Name("sum_hw/ours")->UseRealTime();
BENCHMARK(BM_elementwise<ElementwiseCase::sum_hw, Path::scalar>)->Name("sum_hw/scalar")->UseRealTime();
BENCHMARK(BM_elementwise<ElementwiseCase::softmax, Path::ours>)->Name("softmax/ours")->UseRealTime();
BENCHMARK(BM_elementwise<ElementwiseCase::softmax, Path::scalar>)->Name("softmax/scalar")->UseRealTime();

// ---------------------------------------------------------------- layout: permute, upsampling
// The attention's [B, C, P] -> [B, P, C] transposition (64 channels at 7x7); the U-Net's
// nearest-neighbour upsampling of 64 channels from 14x14 to 28x28, and its gradient.

struct LayoutCase {
    enum Kind { permute, upsample, upsample_grad } kind;
    Shape in;  // the input: [B, C, P] for permute, [B C, H, W] for upsampling; the gradient's dx
    std::vector<float> x, y;
    LayoutCase(Kind k, Shape s) : kind(k), in(std::move(s)), x(random_floats(in.numel() * (k == upsample_grad ? 4 : 1), 1)) {
        y.resize(static_cast<size_t>(in.numel() * (k == upsample ? 4 : 1)));
    }
    template <class T>
    void compute(bool ref, const T* src, T* dst) const {
        static const int kTranspose[] = {0, 2, 1};
        switch (kind) {
            case permute:
                if (ref) kernels::ref::permute(src, in, kTranspose, dst);
                else kernels::permute(src, in, kTranspose, dst);
                break;
            case upsample:
                if (ref) kernels::ref::upsample_nearest2x(src, in[0], in[1], in[2], dst);
                else kernels::upsample_nearest2x(src, in[0], in[1], in[2], dst);
                break;
            case upsample_grad:
                if (ref) kernels::ref::upsample_nearest2x_backward(src, in[0], in[1], in[2], dst, false);
                else kernels::upsample_nearest2x_backward(src, in[0], in[1], in[2], dst, false);
                break;
        }
    }
    void run(Path path) { compute(path == Path::scalar, x.data(), y.data()); }
    std::string check(Path) const {
        const std::vector<double> xd = to_double(x);
        std::vector<double> want(y.size());
        compute(true, xd.data(), want.data());
        return close_error(kind == permute ? "permute" : kind == upsample ? "upsample" : "upsample gradient", y.data(), want.data(),
                           static_cast<int64_t>(want.size()), kind == upsample_grad ? 4.0 : 1.0);
    }
    double bytes() const { return 4.0 * static_cast<double>(x.size() + y.size()); }
};

template <LayoutCase::Kind kind, Path path>
void BM_layout(benchmark::State& st) {
    LayoutCase c(kind, kind == LayoutCase::permute ? Shape{kBatch, 64, 49} : Shape{kBatch * 64, 14, 14});
    bench(st, c, path, "bytes", c.bytes());
}

BENCHMARK(BM_layout<LayoutCase::permute, Path::ours>)->Name("permute/ours")->UseRealTime();
BENCHMARK(BM_layout<LayoutCase::permute, Path::scalar>)->Name("permute/scalar")->UseRealTime();
BENCHMARK(BM_layout<LayoutCase::upsample, Path::ours>)->Name("upsample/ours")->UseRealTime();
BENCHMARK(BM_layout<LayoutCase::upsample, Path::scalar>)->Name("upsample/scalar")->UseRealTime();
BENCHMARK(BM_layout<LayoutCase::upsample_grad, Path::ours>)->Name("upsample_bwd/ours")->UseRealTime();
BENCHMARK(BM_layout<LayoutCase::upsample_grad, Path::scalar>)->Name("upsample_bwd/scalar")->UseRealTime();

// ---------------------------------------------------------------- layers and the U-Net step
// Whole layers in float (what the library runs) beside the same layers in double, which run
// the reference kernels (the scalar path), with the float layer's parameters and input. The
// check runs both on a small batch and compares the output and the input gradient loosely
// (float against double rounding, as the golden test does). Rates are images (rows for
// Linear) per second; the double layers run smaller batches where batch 64 would take minutes.

template <class T>
struct LinearLayer {  // the time MLP's Linear(128, 128) of the reference U-Net
    Rng init{7};
    nn::Linear<T> layer{128, 128, init};
    explicit LinearLayer(int64_t) {}
    static Shape input(int64_t B) { return {B, 128}; }
    nn::Module<T>& module() { return layer; }
    Var<T> forward(const Var<T>& x) const { return layer.forward(x); }
};

template <class T>
struct ResBlockLayer {  // 64 -> 64 channels at 14x14, time embedding of 128
    Rng init{7}, noise{8};
    nn::ResBlock<T> layer{64, 64, 128, 8, 0.0, init, noise};
    Var<T> emb_act;
    explicit ResBlockLayer(int64_t B) {
        Rng data(9);
        emb_act = Var<T>(Tensor<T>::randn({B, 128}, data));
    }
    static Shape input(int64_t B) { return {B, 64, 14, 14}; }
    nn::Module<T>& module() { return layer; }
    Var<T> forward(const Var<T>& x) const { return layer.forward(x, emb_act); }
};

template <class T>
struct AttentionLayer {  // 64 channels at 7x7, 8 groups: GroupNorm, qkv, softmax(q^T k / 8), v a^T, projection
    Rng init{7};
    nn::Attention<T> layer{64, 8, init};
    explicit AttentionLayer(int64_t) {}
    static Shape input(int64_t B) { return {B, 64, 7, 7}; }
    nn::Module<T>& module() { return layer; }
    Var<T> forward(const Var<T>& x) const { return layer.forward(x); }
};

template <class T>
struct UNetLayer {  // the reference U-Net (UNET.md), 1,623,169 parameters, at timesteps spread over [0, 1000)
    nn::UNet<T> layer{nn::UNetConfig{}, 7};
    Tensor<int64_t> t;
    explicit UNetLayer(int64_t B) : t({B}) {
        for (int64_t i = 0; i < B; ++i) t.data()[i] = (i * 397) % 1000;
    }
    static Shape input(int64_t B) { return {B, 1, 28, 28}; }
    nn::Module<T>& module() { return layer; }
    Var<T> forward(const Var<T>& x) const { return layer.forward(x, t); }
};

template <template <class> class Layer, class T>
struct LayerCase {
    Layer<T> layer;
    Var<T> x;
    explicit LayerCase(int64_t B) : layer(B) {
        Rng data(10);
        x = Var<T>(Tensor<float>::randn(Layer<T>::input(B), data).template cast<T>(), true);
        Layer<float> source(B);  // double layers take the float layer's parameters
        auto from = source.module().named_parameters();
        auto to = layer.module().named_parameters();
        for (size_t i = 0; i < to.size(); ++i) to[i].second->value().copy_from(from[i].second->value().template cast<T>());
    }
};

template <template <class> class Layer>
std::string layer_error(const char* name) {
    LayerCase<Layer, float> f(2);
    LayerCase<Layer, double> d(2);
    const Var<float> yf = f.layer.forward(f.x);
    const Var<double> yd = d.layer.forward(d.x);
    sum(yf * yf).backward();
    sum(yd * yd).backward();
    auto rel = [](const float* a, const double* b, int64_t n) {
        double e = 0, m = 0;
        for (int64_t i = 0; i < n; ++i) {
            e = std::max(e, std::abs(a[i] - b[i]));
            m = std::max(m, std::abs(b[i]));
        }
        return e / std::max(m, 1e-30);
    };
    const double ey = rel(yf.value().data(), yd.value().data(), yf.numel());
    const double eg = rel(f.x.grad().data(), d.x.grad().data(), f.x.numel());
    if (ey <= 1e-4 && eg <= 1e-3) return "";
    char message[160];
    std::snprintf(message, sizeof message, "%s is wrong: output error %.3g, input gradient error %.3g", name, ey, eg);
    return message;
}

template <template <class> class Layer, bool backward, Path path>
void BM_layer(benchmark::State& st, const char* name) {
    if (wrong(st, layer_error<Layer>(name))) return;
    using T = std::conditional_t<path == Path::scalar, double, float>;
    const int64_t B = st.range(0);
    LayerCase<Layer, T> c(B);
    const Tensor<T> seed = Tensor<T>::ones(c.layer.forward(c.x).shape());
    for (auto _ : st) {
        if (backward) {
            c.layer.forward(c.x).backward(seed);
            benchmark::DoNotOptimize(c.x.grad().data());
        } else {
            NoGradGuard no_grad;
            Var<T> y = c.layer.forward(c.x);
            benchmark::DoNotOptimize(y.value().data());
        }
    }
    set_rate(st, "images", static_cast<double>(B));
}

// name_fwd and name_fwd_bwd (forward, then backward from a gradient of ones): /ours at batch 64,
// /scalar (double) at scalar_batch. Registered from main (templates of templates).
template <template <class> class Layer>
void register_layer(const char* name, int64_t scalar_batch) {
    const std::string base = name;
    for (auto* b : {benchmark::RegisterBenchmark((base + "_fwd/ours").c_str(), BM_layer<Layer, false, Path::ours>, name)->Arg(kBatch),
                    benchmark::RegisterBenchmark((base + "_fwd_bwd/ours").c_str(), BM_layer<Layer, true, Path::ours>, name)->Arg(kBatch),
                    benchmark::RegisterBenchmark((base + "_fwd/scalar").c_str(), BM_layer<Layer, false, Path::scalar>, name)->Arg(scalar_batch),
                    benchmark::RegisterBenchmark((base + "_fwd_bwd/scalar").c_str(), BM_layer<Layer, true, Path::scalar>, name)->Arg(scalar_batch)})
        b->ArgName("B")->UseRealTime()->Unit(benchmark::kMillisecond);
}

// ---------------------------------------------------------------- Adam
// One update of the default U-Net's 1,623,169 parameters: reads p, g, m, v, writes p, m, v.
// The check compares the first update with the reference's from the same state.

struct AdamCase {
    static constexpr int64_t n = 1623169;
    const kernels::AdamStep s{2e-4, 0.9, 0.999, 1e-8, 0.0, false, 3};
    const std::vector<float> p0 = random_floats(n, 1), g = random_floats(n, 2), m0 = random_floats(n, 3, -0.01, 0.01),
                             v0 = random_floats(n, 4, 0.0, 0.01);
    std::vector<float> p = p0, m = m0, v = v0;

    void run(Path path) {
        if (path == Path::scalar) kernels::ref::adam_update(n, s, p.data(), g.data(), m.data(), v.data());
        else kernels::adam_update(n, s, p.data(), g.data(), m.data(), v.data());
    }
    std::string check(Path) const {
        std::vector<double> pd = to_double(p0), gd = to_double(g), md = to_double(m0), vd = to_double(v0);
        kernels::ref::adam_update(n, s, pd.data(), gd.data(), md.data(), vd.data());
        std::string error = close_error("adam_update (p)", p.data(), pd.data(), n, 4);
        if (error.empty()) error = close_error("adam_update (m)", m.data(), md.data(), n, 4);
        if (error.empty()) error = close_error("adam_update (v)", v.data(), vd.data(), n, 4);
        return error;
    }
};

template <Path path>
void BM_adam(benchmark::State& st) {
    AdamCase c;
    bench(st, c, path, "bytes", 28.0 * AdamCase::n);
}

BENCHMARK(BM_adam<Path::ours>)->Name("adam/ours")->UseRealTime();
BENCHMARK(BM_adam<Path::scalar>)->Name("adam/scalar")->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const int threads = num_threads();
    Eigen::setNbThreads(threads);  // the peer GEMM on the same threads
    benchmark::AddCustomContext("ddpmkit_arch", DDPMKIT_ARCH_NAME);
    benchmark::AddCustomContext("threads", std::to_string(threads));
    benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
    register_layer<LinearLayer>("linear", kBatch);
    register_layer<ResBlockLayer>("resblock", 8);
    register_layer<AttentionLayer>("attention", 8);
    register_layer<UNetLayer>("unet", 2);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
