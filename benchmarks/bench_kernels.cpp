// bench_kernels — the kernels at the shapes of the reference U-Net (batch 64, 28x28,
// docs/unet.md), with Google Benchmark.
//
// Every benchmark first checks its result against the scalar reference (kernels/reference.hpp
// and the ref:: paths, run in double) with the tolerance of the tests, and aborts with a
// message when it is wrong (docs/architecture.md, conventions); then it times. Rates are counters:
// FLOPS (2 per multiply-add) or bytes per second. Threaded kernels use real time.
//
//   bench_kernels                                   all of them, 2 threads (OMP_NUM_THREADS)
//   bench_kernels --benchmark_filter=conv           one family
//   bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_kernels --benchmark_format=json > kernels.json
//
// Families: gemm/<ours|eigen|scalar>/M/N/K (conv-as-GEMM shapes of one image: M = O,
// K = 9 C, N = H W; and the Linear layers' shapes), conv3x3_{fwd,bwd_data,bwd_weight}/C/O/HW
// (batch 64), group_norm{,_silu}_{fwd,bwd}/C/HW, attention_{fwd,fwd_bwd} (64 channels at
// 7x7), adam (1,623,169 parameters).
#include <benchmark/benchmark.h>

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
// cancels to nearly 0 keeps the rounding error of its terms.
void check_close(const char* what, const float* got, const double* want, int64_t n, double k) {
    double rms = 0;
    for (int64_t i = 0; i < n; ++i) rms += want[i] * want[i];
    rms = std::sqrt(rms / static_cast<double>(std::max<int64_t>(n, 1)));
    for (int64_t i = 0; i < n; ++i) {
        const double err = std::abs(got[i] - want[i]), allowed = 1e-5 + 1.3e-6 * k * std::max(std::abs(want[i]), rms);
        if (!(err <= allowed)) {
            std::fprintf(stderr, "bench_kernels: %s is wrong at element %lld: got %.9g, want %.9g (allowed error %.3g)\n",
                         what, static_cast<long long>(i), double(got[i]), want[i], allowed);
            std::abort();
        }
    }
}

void set_rate(benchmark::State& st, const char* name, double per_iteration) {
    st.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}

// ---------------------------------------------------------------- GEMM
// C [M, N] = A [M, K] B [K, N], row-major.

struct GemmCase {
    int64_t M, N, K;
    std::vector<float> A, B, C;
    GemmCase(int64_t m, int64_t n, int64_t k)
        : M(m), N(n), K(k), A(random_floats(m * k, 1)), B(random_floats(k * n, 2)), C(static_cast<size_t>(m * n)) {}
    void check(const char* what) const {
        const std::vector<double> Ad = to_double(A), Bd = to_double(B);
        std::vector<double> Cd(C.size());
        kernels::ref::gemm(false, false, M, N, K, 1.0, Ad.data(), K, Bd.data(), N, 0.0, Cd.data(), N);
        check_close(what, C.data(), Cd.data(), M * N, static_cast<double>(K));
    }
};

void BM_gemm_ours(benchmark::State& st) {
    GemmCase g(st.range(0), st.range(1), st.range(2));
    auto run = [&] {
        kernels::gemm(false, false, g.M, g.N, g.K, 1.0f, g.A.data(), g.K, g.B.data(), g.N, 0.0f, g.C.data(), g.N);
    };
    run();
    g.check("gemm (ours)");
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
    g.check("gemm (Eigen)");
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
    g.check("gemm (scalar reference)");
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
// The reference's layers: C -> O at HxW, padding 1, batch 64.

struct ConvCase {
    kernels::ConvGeometry g;
    std::vector<float> x, w, b, y, dy, dx, dw, db;
    ConvCase(int64_t C, int64_t O, int64_t HW)
        : g{C, HW, HW, O, 3, 3, 1, 1},
          x(random_floats(kBatch * C * HW * HW, 1)),
          w(random_floats(O * C * 9, 2, -0.1, 0.1)),
          b(random_floats(O, 3)),
          y(static_cast<size_t>(kBatch * O * HW * HW)),
          dy(random_floats(kBatch * O * HW * HW, 4)),
          dx(x.size()),
          dw(w.size()),
          db(b.size()) {}
    double flops() const { return 2.0 * kBatch * g.O * g.K() * g.Ho() * g.Wo(); }
};

void BM_conv_fwd(benchmark::State& st) {
    ConvCase c(st.range(0), st.range(1), st.range(2));
    auto run = [&] { kernels::conv2d_forward(c.x.data(), kBatch, c.w.data(), c.b.data(), c.g, c.y.data()); };
    run();
    {
        const std::vector<double> xd = to_double(c.x), wd = to_double(c.w), bd = to_double(c.b);
        std::vector<double> yd(c.y.size());
        kernels::ref::conv2d_forward(xd.data(), kBatch, wd.data(), bd.data(), c.g, yd.data());
        check_close("conv2d_forward", c.y.data(), yd.data(), static_cast<int64_t>(yd.size()), static_cast<double>(c.g.K()));
    }
    for (auto _ : st) {
        run();
        benchmark::DoNotOptimize(c.y.data());
    }
    set_rate(st, "FLOPS", c.flops());
}

void BM_conv_bwd_data(benchmark::State& st) {
    ConvCase c(st.range(0), st.range(1), st.range(2));
    auto run = [&] {
        kernels::conv2d_backward(c.x.data(), kBatch, c.w.data(), c.g, c.dy.data(), c.dx.data(), no<float>(), no<float>());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), wd = to_double(c.w), dyd = to_double(c.dy);
        std::vector<double> dxd(c.dx.size());
        kernels::ref::conv2d_backward(xd.data(), kBatch, wd.data(), c.g, dyd.data(), dxd.data(), no<double>(), no<double>());
        check_close("conv2d_backward (data)", c.dx.data(), dxd.data(), static_cast<int64_t>(dxd.size()),
                    static_cast<double>(c.g.O * 9));
    }
    for (auto _ : st) {
        std::fill(c.dx.begin(), c.dx.end(), 0.0f);  // it accumulates: keep the values bounded
        run();
        benchmark::DoNotOptimize(c.dx.data());
    }
    set_rate(st, "FLOPS", c.flops());
}

void BM_conv_bwd_weight(benchmark::State& st) {
    ConvCase c(st.range(0), st.range(1), st.range(2));
    auto run = [&] {
        kernels::conv2d_backward(c.x.data(), kBatch, c.w.data(), c.g, c.dy.data(), no<float>(), c.dw.data(), c.db.data());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), wd = to_double(c.w), dyd = to_double(c.dy);
        std::vector<double> dwd(c.dw.size()), dbd(c.db.size());
        kernels::ref::conv2d_backward(xd.data(), kBatch, wd.data(), c.g, dyd.data(), no<double>(), dwd.data(), dbd.data());
        const double k = static_cast<double>(kBatch * c.g.Ho() * c.g.Wo());
        check_close("conv2d_backward (weight)", c.dw.data(), dwd.data(), static_cast<int64_t>(dwd.size()), k);
        check_close("conv2d_backward (bias)", c.db.data(), dbd.data(), static_cast<int64_t>(dbd.size()), k);
    }
    for (auto _ : st) {
        std::fill(c.dw.begin(), c.dw.end(), 0.0f);
        std::fill(c.db.begin(), c.db.end(), 0.0f);
        run();
        benchmark::DoNotOptimize(c.dw.data());
    }
    set_rate(st, "FLOPS", c.flops());
}

void conv_layers(benchmark::internal::Benchmark* b) {
    b->Args({32, 32, 28})->Args({64, 64, 14})->Args({64, 64, 7})->Args({128, 64, 7});
    b->ArgNames({"C", "O", "HW"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_conv_fwd)->Name("conv3x3_fwd")->Apply(conv_layers);
BENCHMARK(BM_conv_bwd_data)->Name("conv3x3_bwd_data")->Apply(conv_layers);
BENCHMARK(BM_conv_bwd_weight)->Name("conv3x3_bwd_weight")->Apply(conv_layers);

// ---------------------------------------------------------------- GroupNorm (+ SiLU)
// 8 groups, batch 64; forward reads x and writes y, backward reads x, dy and writes dx.

struct NormCase {
    int64_t C, HW, G = 8;
    std::vector<float> x, gamma, beta, y, mean, rstd, dy, dx, dgamma, dbeta;
    NormCase(int64_t c, int64_t hw)
        : C(c),
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
          dbeta(beta.size()) {}
    int64_t n() const { return kBatch * C * HW; }
};

void BM_group_norm_fwd(benchmark::State& st) {
    NormCase c(st.range(0), st.range(1));
    auto run = [&] {
        kernels::group_norm_forward(c.x.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.beta.data(), 1e-5, c.y.data(),
                                    c.mean.data(), c.rstd.data());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), gd = to_double(c.gamma), bd = to_double(c.beta);
        std::vector<double> yd(c.y.size()), md(c.mean.size()), rd(c.rstd.size());
        kernels::ref::group_norm_forward(xd.data(), kBatch, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, yd.data(), md.data(),
                                         rd.data());
        check_close("group_norm_forward", c.y.data(), yd.data(), c.n(), static_cast<double>(c.C / c.G * c.HW));
    }
    for (auto _ : st) {
        run();
        benchmark::DoNotOptimize(c.y.data());
    }
    set_rate(st, "bytes", 8.0 * c.n());
}

void BM_group_norm_bwd(benchmark::State& st) {
    NormCase c(st.range(0), st.range(1));
    kernels::group_norm_forward(c.x.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.beta.data(), 1e-5, c.y.data(),
                                c.mean.data(), c.rstd.data());
    auto run = [&] {
        kernels::group_norm_backward(c.x.data(), c.dy.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.mean.data(),
                                     c.rstd.data(), c.dx.data(), c.dgamma.data(), c.dbeta.data());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), gd = to_double(c.gamma), bd = to_double(c.beta), dyd = to_double(c.dy);
        std::vector<double> yd(c.y.size()), md(c.mean.size()), rd(c.rstd.size()), dxd(c.dx.size()), dgd(c.C), dbd(c.C);
        kernels::ref::group_norm_forward(xd.data(), kBatch, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, yd.data(), md.data(),
                                         rd.data());
        kernels::ref::group_norm_backward(xd.data(), dyd.data(), kBatch, c.C, c.HW, c.G, gd.data(), md.data(), rd.data(),
                                          dxd.data(), dgd.data(), dbd.data());
        const double k = static_cast<double>(c.C / c.G * c.HW);
        check_close("group_norm_backward (x)", c.dx.data(), dxd.data(), c.n(), k);
        check_close("group_norm_backward (gamma)", c.dgamma.data(), dgd.data(), c.C, k * kBatch);
        check_close("group_norm_backward (beta)", c.dbeta.data(), dbd.data(), c.C, k * kBatch);
    }
    for (auto _ : st) {
        std::fill(c.dx.begin(), c.dx.end(), 0.0f);
        run();
        benchmark::DoNotOptimize(c.dx.data());
    }
    set_rate(st, "bytes", 12.0 * c.n());
}

void BM_group_norm_silu_fwd(benchmark::State& st) {
    NormCase c(st.range(0), st.range(1));
    auto run = [&] {
        kernels::group_norm_silu_forward(c.x.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.beta.data(), 1e-5, c.y.data(),
                                         c.mean.data(), c.rstd.data());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), gd = to_double(c.gamma), bd = to_double(c.beta);
        std::vector<double> yd(c.y.size()), md(c.mean.size()), rd(c.rstd.size());
        kernels::ref::group_norm_silu_forward(xd.data(), kBatch, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, yd.data(),
                                              md.data(), rd.data());
        check_close("group_norm_silu_forward", c.y.data(), yd.data(), c.n(), static_cast<double>(c.C / c.G * c.HW));
    }
    for (auto _ : st) {
        run();
        benchmark::DoNotOptimize(c.y.data());
    }
    set_rate(st, "bytes", 8.0 * c.n());
}

void BM_group_norm_silu_bwd(benchmark::State& st) {
    NormCase c(st.range(0), st.range(1));
    kernels::group_norm_silu_forward(c.x.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.beta.data(), 1e-5, c.y.data(),
                                     c.mean.data(), c.rstd.data());
    auto run = [&] {
        kernels::group_norm_silu_backward(c.x.data(), c.dy.data(), kBatch, c.C, c.HW, c.G, c.gamma.data(), c.beta.data(),
                                          c.mean.data(), c.rstd.data(), c.dx.data(), c.dgamma.data(), c.dbeta.data());
    };
    run();
    {
        const std::vector<double> xd = to_double(c.x), gd = to_double(c.gamma), bd = to_double(c.beta), dyd = to_double(c.dy);
        std::vector<double> yd(c.y.size()), md(c.mean.size()), rd(c.rstd.size()), dxd(c.dx.size()), dgd(c.C), dbd(c.C);
        kernels::ref::group_norm_silu_forward(xd.data(), kBatch, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, yd.data(),
                                              md.data(), rd.data());
        kernels::ref::group_norm_silu_backward(xd.data(), dyd.data(), kBatch, c.C, c.HW, c.G, gd.data(), bd.data(), md.data(),
                                               rd.data(), dxd.data(), dgd.data(), dbd.data());
        const double k = static_cast<double>(c.C / c.G * c.HW);
        check_close("group_norm_silu_backward (x)", c.dx.data(), dxd.data(), c.n(), k);
        check_close("group_norm_silu_backward (gamma)", c.dgamma.data(), dgd.data(), c.C, k * kBatch);
        check_close("group_norm_silu_backward (beta)", c.dbeta.data(), dbd.data(), c.C, k * kBatch);
    }
    for (auto _ : st) {
        std::fill(c.dx.begin(), c.dx.end(), 0.0f);
        run();
        benchmark::DoNotOptimize(c.dx.data());
    }
    set_rate(st, "bytes", 12.0 * c.n());
}

void norm_shapes(benchmark::internal::Benchmark* b) {
    b->Args({32, 28 * 28})->Args({64, 14 * 14})->Args({128, 7 * 7});
    b->ArgNames({"C", "HW"})->UseRealTime();
}

BENCHMARK(BM_group_norm_fwd)->Name("group_norm_fwd")->Apply(norm_shapes);
BENCHMARK(BM_group_norm_bwd)->Name("group_norm_bwd")->Apply(norm_shapes);
BENCHMARK(BM_group_norm_silu_fwd)->Name("group_norm_silu_fwd")->Apply(norm_shapes);
BENCHMARK(BM_group_norm_silu_bwd)->Name("group_norm_silu_bwd")->Apply(norm_shapes);

// ---------------------------------------------------------------- attention
// nn::Attention(64 channels, 8 groups) on [64, 64, 7, 7]: GroupNorm, qkv 1x1 conv,
// softmax(q^T k / 8) over the 49 positions, v a^T, 1x1 projection, residual.

// Matmul FLOPs of one attention block's forward: qkv, q^T k, v a^T, projection.
double attention_flops(int64_t C, int64_t P) { return 2.0 * kBatch * (3 * C * C * P + 2 * P * P * C + C * C * P); }

template <class T>
struct AttentionCase {
    Rng rng{7};
    nn::Attention<T> attn{64, 8, rng};
    Var<T> x;
    AttentionCase() {
        Rng data(8);
        x = Var<T>(Tensor<T>::randn({kBatch, 64, 7, 7}, data), true);
    }
};

void check_attention() {
    AttentionCase<float> f;
    AttentionCase<double> d;  // the same parameters and input, rounded to float above
    const Var<float> yf = f.attn.forward(f.x);
    const Var<double> yd = d.attn.forward(d.x);
    sum(yf * yf).backward();
    sum(yd * yd).backward();
    // The float and double parameters differ by float rounding: compare loosely, as the golden test does.
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
    if (!(ey <= 1e-4 && eg <= 1e-3)) {
        std::fprintf(stderr, "bench_kernels: attention is wrong: output error %.3g, input gradient error %.3g\n", ey, eg);
        std::abort();
    }
}

void BM_attention_fwd(benchmark::State& st) {
    check_attention();
    AttentionCase<float> c;
    NoGradGuard no_grad;
    for (auto _ : st) {
        Var<float> y = c.attn.forward(c.x);
        benchmark::DoNotOptimize(y.value().data());
    }
    set_rate(st, "FLOPS", attention_flops(64, 49));
}

void BM_attention_fwd_bwd(benchmark::State& st) {
    check_attention();
    AttentionCase<float> c;
    const Tensor<float> seed = Tensor<float>::ones({kBatch, 64, 7, 7});
    for (auto _ : st) {
        Var<float> y = c.attn.forward(c.x);
        y.backward(seed);
        benchmark::DoNotOptimize(c.x.grad().data());
    }
    set_rate(st, "FLOPS", 3 * attention_flops(64, 49));
}

BENCHMARK(BM_attention_fwd)->Name("attention_fwd")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_attention_fwd_bwd)->Name("attention_fwd_bwd")->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------- Adam
// One update of the default U-Net's 1,623,169 parameters: reads p, g, m, v, writes p, m, v.

void BM_adam(benchmark::State& st) {
    const int64_t n = 1623169;
    std::vector<float> p = random_floats(n, 1), g = random_floats(n, 2), m = random_floats(n, 3, -0.01, 0.01),
                       v = random_floats(n, 4, 0.0, 0.01);
    {
        std::vector<double> pd = to_double(p), gd = to_double(g), md = to_double(m), vd = to_double(v);
        std::vector<float> pf = p, mf = m, vf = v;
        const kernels::AdamStep s{2e-4, 0.9, 0.999, 1e-8, 0.0, false, 3};
        kernels::adam_update(n, s, pf.data(), g.data(), mf.data(), vf.data());
        kernels::ref::adam_update(n, s, pd.data(), gd.data(), md.data(), vd.data());
        check_close("adam_update (p)", pf.data(), pd.data(), n, 4);
        check_close("adam_update (m)", mf.data(), md.data(), n, 4);
        check_close("adam_update (v)", vf.data(), vd.data(), n, 4);
    }
    int64_t step = 1;
    for (auto _ : st) {
        const kernels::AdamStep s{2e-4, 0.9, 0.999, 1e-8, 0.0, false, step++};
        kernels::adam_update(n, s, p.data(), g.data(), m.data(), v.data());
        benchmark::DoNotOptimize(p.data());
    }
    set_rate(st, "bytes", 28.0 * n);
}

BENCHMARK(BM_adam)->Name("adam")->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const int threads = num_threads();
    Eigen::setNbThreads(threads);  // the peer GEMM on the same threads
    benchmark::AddCustomContext("ddpmkit_arch", DDPMKIT_ARCH_NAME);
    benchmark::AddCustomContext("threads", std::to_string(threads));
    benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
