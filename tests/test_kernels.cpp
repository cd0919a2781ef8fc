// Tests of kernels/: every fast kernel (float, SIMD + OpenMP) against the scalar
// reference run in double, on sizes that hit the SIMD leftovers. Tolerance (docs/testing.md):
// |fast - ref| <= 1e-5 + 1.3e-6 k |ref|, k the reduction length (1 for elementwise).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"

using namespace ddpmkit;
using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

const int64_t kSizes[] = {1, 7, 16, 17, 33, 64, 1023, 4099};

std::vector<float> random_floats(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    std::vector<float> v(static_cast<size_t>(n));
    Rng rng(seed);
    rng.uniform(v.data(), n, lo, hi);
    return v;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Checks |got - want| <= eps * bound elementwise (eps in float epsilons, bound[i] the sum of
// the magnitudes that make element i); reports the worst element.
void check_bounded(const float* got, const double* want, const double* bound, int64_t n, double eps, const std::string& what) {
    const double unit = std::numeric_limits<float>::epsilon();
    double worst = 0.0;
    int64_t where = -1;
    for (int64_t i = 0; i < n; ++i) {
        const double err = std::abs(got[i] - want[i]);
        if (!(err <= eps * unit * bound[i]) && (where < 0 || err / bound[i] > worst)) worst = err / bound[i], where = i;
    }
    INFO(what << ": n " << n << ", worst element " << where << " off by " << worst / unit << " epsilons of its bound (allowed "
              << eps << ")");
    CHECK(where == -1);
}

// Checks got against want within the kernel tolerance; reports the worst element.
void check_close(const float* got, const double* want, int64_t n, double k, const char* what) {
    double worst = 0.0;
    int64_t where = -1;
    for (int64_t i = 0; i < n; ++i) {
        const double err = std::abs(got[i] - want[i]), allowed = 1e-5 + 1.3e-6 * k * std::abs(want[i]);
        const bool bad = !(err <= allowed) && !(std::isnan(got[i]) && std::isnan(want[i])) &&
                         !(std::isinf(want[i]) && got[i] == want[i]);
        if (bad && (where < 0 || err > worst)) {
            worst = err;
            where = i;
        }
    }
    INFO(what << ": n " << n << ", worst element " << where << " got " << (where >= 0 ? got[where] : 0.0f) << " want "
              << (where >= 0 ? want[where] : 0.0));
    CHECK(where == -1);
}

}  // namespace

TEST_CASE("kernels: the build reports its instruction set") {
    MESSAGE("kernels built for " << DDPMKIT_ARCH_NAME << " with " << num_threads() << " threads");
    CHECK(std::string(DDPMKIT_ARCH_NAME).size() > 0);
    static_assert(arch_name()[0] != '\0', "arch_name() is a constant expression");
    CHECK(std::string(arch_name()) == DDPMKIT_ARCH_NAME);
#if defined(DDPMKIT_HAS_OPENMP)
    CHECK(has_openmp());
#else
    CHECK(!has_openmp());
#endif
#if defined(DDPMKIT_NO_SIMD)
    CHECK(simd::kWidth == 1);
    CHECK(std::string(arch_name()) == "scalar");
#endif
}

TEST_CASE("kernels: unary math matches the reference") {
    struct Case {
        UnaryOp op;
        const char* name;
        double lo, hi;
    };
    const Case cases[] = {{UnaryOp::Exp, "exp", -20, 20},       {UnaryOp::Log, "log", 1e-3, 1e3},
                          {UnaryOp::Sqrt, "sqrt", 0, 100},      {UnaryOp::Tanh, "tanh", -10, 10},
                          {UnaryOp::Sigmoid, "sigmoid", -20, 20}, {UnaryOp::Silu, "silu", -20, 20},
                          {UnaryOp::Relu, "relu", -1, 1}};
    for (const Case& c : cases)
        for (int64_t n : kSizes) {
            const std::vector<float> x = random_floats(n, 11 + static_cast<uint64_t>(n), c.lo, c.hi);
            std::vector<float> y(x.size());
            std::vector<double> xd = to_double(x), yd(x.size());
            kernels::unary(c.op, x.data(), y.data(), n);
            kernels::ref::unary(c.op, xd.data(), yd.data(), n);
            check_close(y.data(), yd.data(), n, 1, c.name);
            // and its derivative: dx += dy f'(x), starting from a nonzero dx
            const std::vector<float> dy = random_floats(n, 5);
            std::vector<float> dx = random_floats(n, 6);
            std::vector<double> dyd = to_double(dy), dxd = to_double(dx);
            kernels::unary_backward(c.op, x.data(), y.data(), dy.data(), dx.data(), n);
            kernels::ref::unary_backward(c.op, xd.data(), yd.data(), dyd.data(), dxd.data(), n);
            check_close(dx.data(), dxd.data(), n, 1, c.name);
        }
}

TEST_CASE("kernels: unary math outside the usual range: NaN, zeros, infinities") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::vector<float> x(40, 0.5f);
    x[3] = nan;
    x[20] = nan;
    std::vector<float> y(x.size());
    for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Silu}) {
        kernels::unary(op, x.data(), y.data(), 40);
        CHECK(std::isnan(y[3]));  // a NaN is never hidden
        CHECK(std::isnan(y[20]));
        CHECK(!std::isnan(y[21]));
    }
    std::vector<float> z = {0.0f, -1.0f, inf, 1e-40f, 2.0f, 1.0f, 0.25f, 8.0f, 3.0f, 5.0f, 6.0f, 7.0f, 9.0f, 10.0f, 11.0f, 12.0f, 4.0f};
    std::vector<float> lz(z.size());
    kernels::unary(UnaryOp::Log, z.data(), lz.data(), static_cast<int64_t>(z.size()));
    CHECK(lz[0] == -inf);
    CHECK(std::isnan(lz[1]));
    CHECK(lz[2] == inf);
    CHECK(lz[3] == doctest::Approx(std::log(1e-40)).epsilon(1e-5));
    CHECK(lz[4] == doctest::Approx(std::log(2.0)).epsilon(1e-6));
    std::vector<float> big = {-100.0f, 100.0f, -100.0f, 100.0f, -100.0f, 100.0f, -100.0f, 100.0f, -100.0f, 100.0f,
                              -100.0f, 100.0f, -100.0f, 100.0f, -100.0f, 100.0f, 0.0f};
    std::vector<float> tb(big.size());
    kernels::unary(UnaryOp::Tanh, big.data(), tb.data(), static_cast<int64_t>(big.size()));
    CHECK(tb[0] == -1.0f);
    CHECK(tb[1] == 1.0f);
    kernels::unary(UnaryOp::Sigmoid, big.data(), tb.data(), static_cast<int64_t>(big.size()));
    CHECK(tb[0] < 1e-30f);
    CHECK(tb[1] == 1.0f);
}

TEST_CASE("kernels: broadcast arithmetic matches the reference") {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{1}, {1}},          {{7}, {7}},          {{17}, {1}},         {{}, {33}},         {{1023}, {}},
        {{2, 3, 17}, {3, 1}}, {{4, 1, 33}, {1, 5, 1}}, {{3, 8, 7, 7}, {3, 8, 1, 1}}, {{1, 8, 1, 1}, {3, 8, 5, 9}},
        {{2, 1, 4099}, {2, 3, 4099}}, {{5, 4}, {4}}};
    for (const auto& pair : shapes)
        for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
            const Shape &sa = pair.first, &sb = pair.second;  // not a structured binding: INFO captures them
            const Shape so = broadcast_shapes("test", sa, sb);
            const std::vector<float> a = random_floats(sa.numel(), 1), b = random_floats(sb.numel(), 2, 0.5, 2.0);
            std::vector<float> out(static_cast<size_t>(so.numel()));
            std::vector<double> ad = to_double(a), bd = to_double(b), want(out.size());
            kernels::broadcast_binary(op, a.data(), sa, b.data(), sb, out.data(), so);
            kernels::ref::broadcast_binary(op, ad.data(), sa, bd.data(), sb, want.data(), so);
            INFO(sa << " op " << sb);
            check_close(out.data(), want.data(), so.numel(), 1, "broadcast_binary");
        }
}

TEST_CASE("kernels: Tensor arithmetic broadcasts as the kernels do, with scalars and in place") {
    Rng rng(3);
    const TensorF x = TensorF::randn({2, 3, 4}, rng), y = TensorF::randn({3, 1}, rng), z = TensorF::rand({2, 3, 4}, rng, 0.5, 2.0);
    const TensorF sum = x + y, diff = x - y, prod = x * y, quot = x / z, affine = 2.0 * x - 0.5, neg = -x, inv = 1.0 / z;
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) {
                CHECK(sum(i, j, k) == x(i, j, k) + y(j, 0));
                CHECK(diff(i, j, k) == x(i, j, k) - y(j, 0));
                CHECK(prod(i, j, k) == x(i, j, k) * y(j, 0));
                CHECK(quot(i, j, k) == x(i, j, k) / z(i, j, k));
                CHECK(affine(i, j, k) == 2.0f * x(i, j, k) - 0.5f);
                CHECK(neg(i, j, k) == -x(i, j, k));
                CHECK(inv(i, j, k) == 1.0f / z(i, j, k));
            }
    TensorF acc = x.clone();
    acc += y;
    acc *= 3.0;
    acc -= x;
    acc /= z;
    for (int64_t i = 0; i < acc.numel(); ++i) {
        const int64_t j = (i / 4) % 3;
        CHECK(acc.data()[i] == doctest::Approx(((x.data()[i] + y(j, 0)) * 3 - x.data()[i]) / z.data()[i]).epsilon(1e-6));
    }
    CHECK(!acc.shares_storage_with(x));  // x + y is a new tensor; += writes into its left side only
    CHECK_THROWS_WITH_AS(x + TensorF({5}), doctest::Contains("operator+"), ShapeError);
    TensorF small = y.clone();
    CHECK_THROWS_WITH_AS(small += x, doctest::Contains("operator+="), ShapeError);  // would change the left's shape
}

TEST_CASE("kernels: axpy matches the reference") {
    for (int64_t n : kSizes) {
        const std::vector<float> x = random_floats(n, 1);
        std::vector<float> y = random_floats(n, 2);
        std::vector<double> xd = to_double(x), yd = to_double(y);
        kernels::axpy(n, 0.75f, x.data(), y.data());
        kernels::ref::axpy(n, 0.75, xd.data(), yd.data());
        check_close(y.data(), yd.data(), n, 1, "axpy");
    }
}

TEST_CASE("kernels: sum and max along an axis match the reference") {
    for (int64_t n : kSizes)
        for (int64_t inner : {int64_t(1), int64_t(5), int64_t(33)})
            for (int64_t outer : {int64_t(1), int64_t(3)}) {
                const std::vector<float> x = random_floats(outer * n * inner, static_cast<uint64_t>(n), 0.0, 1.0);
                std::vector<float> s(static_cast<size_t>(outer * inner)), m(s.size());
                std::vector<double> xd = to_double(x), sd(s.size()), md(s.size());
                kernels::sum_axis(x.data(), outer, n, inner, s.data());
                kernels::ref::sum_axis(xd.data(), outer, n, inner, sd.data());
                kernels::max_axis(x.data(), outer, n, inner, m.data());
                kernels::ref::max_axis(xd.data(), outer, n, inner, md.data());
                INFO("outer " << outer << " n " << n << " inner " << inner);
                check_close(s.data(), sd.data(), outer * inner, static_cast<double>(n), "sum_axis");
                check_close(m.data(), md.data(), outer * inner, 1, "max_axis");
            }
}

TEST_CASE("kernels: softmax and its backward match the reference") {
    for (int64_t n : kSizes)
        for (int64_t rows : {int64_t(1), int64_t(3), int64_t(49)}) {
            const std::vector<float> x = random_floats(rows * n, 3, -8.0, 8.0), dy = random_floats(rows * n, 4);
            std::vector<float> y(x.size()), dx = random_floats(rows * n, 5);
            std::vector<double> xd = to_double(x), dyd = to_double(dy), yd(x.size()), dxd = to_double(dx);
            kernels::softmax(x.data(), rows, n, y.data());
            kernels::ref::softmax(xd.data(), rows, n, yd.data());
            INFO("rows " << rows << " n " << n);
            check_close(y.data(), yd.data(), rows * n, static_cast<double>(n), "softmax");
            kernels::softmax_backward(y.data(), dy.data(), rows, n, dx.data());
            kernels::ref::softmax_backward(yd.data(), dyd.data(), rows, n, dxd.data());
            check_close(dx.data(), dxd.data(), rows * n, static_cast<double>(n), "softmax_backward");
        }
}

TEST_CASE("kernels: simd unzip, zip, slide_down and slide_up move the lanes of two vectors") {
    constexpr int W = simd::kWidth;
    float in[2 * W], out[2 * W];
    for (int i = 0; i < 2 * W; ++i) in[i] = static_cast<float>(i);
    const simd::vfloat a = simd::load(in), b = simd::load(in + W);
    simd::vfloat even, odd, lo, hi;
    simd::unzip(a, b, even, odd);  // even: 0 2 4 .. 2W-2, odd: 1 3 .. 2W-1
    simd::store(out, even);
    simd::store(out + W, odd);
    for (int i = 0; i < W; ++i) {
        CHECK(out[i] == static_cast<float>(2 * i));
        CHECK(out[W + i] == static_cast<float>(2 * i + 1));
    }
    simd::zip(a, b, lo, hi);  // a0 b0 a1 b1 ..: lane 2i is i, lane 2i + 1 is W + i
    simd::store(out, lo);
    simd::store(out + W, hi);
    for (int i = 0; i < W; ++i) {
        CHECK(out[2 * i] == static_cast<float>(i));
        CHECK(out[2 * i + 1] == static_cast<float>(W + i));
    }
    simd::zip(even, odd, lo, hi);  // the inverse of unzip
    simd::store(out, lo);
    simd::store(out + W, hi);
    for (int i = 0; i < 2 * W; ++i) CHECK(out[i] == in[i]);
    simd::store(out, simd::slide_down(a, b));  // a1 .. a_last b0: lane i is i + 1
    simd::store(out + W, simd::slide_up(a, b));  // a_last b0 .. : lane i is W - 1 + i
    for (int i = 0; i < W; ++i) {
        CHECK(out[i] == static_cast<float>(i + 1));
        CHECK(out[W + i] == static_cast<float>(W - 1 + i));
    }
}

TEST_CASE("kernels: GEMM with every transpose, alpha and beta matches the reference") {
    struct Dims {
        int64_t M, N, K;
    };
    const Dims dims[] = {{1, 1, 1},   {7, 17, 33},  {33, 7, 17},   {13, 65, 300},
                         {64, 49, 64}, {32, 784, 288}, {129, 33, 1023}, {5, 3, 0}};
    for (const Dims& d : dims)
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (float beta : {0.0f, 0.5f}) {
                    const int64_t lda = (ta ? d.M : d.K) + 3, ldb = (tb ? d.K : d.N) + 1, ldc = d.N + 2;  // padded rows
                    const std::vector<float> A = random_floats((ta ? d.K : d.M) * lda, 1),
                                             B = random_floats((tb ? d.N : d.K) * ldb, 2);
                    std::vector<float> C = random_floats(d.M * ldc, 3);
                    if (beta == 0.0f) C[0] = std::numeric_limits<float>::quiet_NaN();  // beta 0: C is not read
                    std::vector<double> Ad = to_double(A), Bd = to_double(B), Cd = to_double(C);
                    kernels::gemm(ta, tb, d.M, d.N, d.K, 1.5f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
                    kernels::ref::gemm(ta, tb, d.M, d.N, d.K, 1.5, Ad.data(), lda, Bd.data(), ldb, double(beta), Cd.data(), ldc);
                    INFO("M " << d.M << " N " << d.N << " K " << d.K << " trans " << ta << tb << " beta " << beta);
                    check_close(C.data(), Cd.data(), d.M * ldc, static_cast<double>(std::max<int64_t>(d.K, 1)), "gemm");
                }
}

TEST_CASE("kernels: batched GEMM equals one GEMM per matrix") {
    const int64_t batch = 6, M = 19, N = 23, K = 41;
    const std::vector<float> A = random_floats(batch * M * K, 1), B = random_floats(batch * K * N, 2);
    std::vector<float> C(static_cast<size_t>(batch * M * N));
    kernels::gemm_batched(batch, false, true, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K, K * N, 0.0f, C.data(), N, M * N);
    std::vector<double> Ad = to_double(A), Bd = to_double(B), Cd(C.size());
    for (int64_t b = 0; b < batch; ++b)
        kernels::ref::gemm(false, true, M, N, K, 1.0, Ad.data() + b * M * K, K, Bd.data() + b * K * N, K, 0.0,
                           Cd.data() + b * M * N, N);
    check_close(C.data(), Cd.data(), batch * M * N, K, "gemm_batched");
}

TEST_CASE("kernels: results are bitwise the same for 1 and 2 threads") {
    const int64_t M = 70, N = 300, K = 520;
    const std::vector<float> A = random_floats(M * K, 1), B = random_floats(K * N, 2);
    std::vector<float> C1(static_cast<size_t>(M * N)), C2(C1.size()), S1(static_cast<size_t>(M)), S2(S1.size());
    set_num_threads(1);
    kernels::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
    kernels::sum_axis(C1.data(), M, N, 1, S1.data());
    set_num_threads(2);
    kernels::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
    kernels::sum_axis(C2.data(), M, N, 1, S2.data());
    CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(S1.data(), S2.data(), S1.size() * sizeof(float)) == 0);
}

TEST_CASE("kernels: permute and copy_rows move every element to its place") {
    const Shape s{2, 3, 4, 5};
    std::vector<float> x(static_cast<size_t>(s.numel()));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    const int perm[] = {2, 0, 3, 1};
    std::vector<float> y(x.size());
    kernels::permute(x.data(), s, perm, y.data());
    // y[c, a, d, b] = x[a, b, c, d]
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 3; ++b)
            for (int c = 0; c < 4; ++c)
                for (int d = 0; d < 5; ++d)
                    CHECK(y[static_cast<size_t>(((c * 2 + a) * 5 + d) * 3 + b)] == x[static_cast<size_t>(((a * 3 + b) * 4 + c) * 5 + d)]);
    std::vector<float> dst(12, 1.0f);
    const std::vector<float> src = {1, 2, 3, 4, 5, 6};
    kernels::copy_rows(int64_t(2), int64_t(3), src.data(), int64_t(3), dst.data() + 1, int64_t(6), true);
    CHECK(dst == std::vector<float>{1, 2, 3, 4, 1, 1, 1, 5, 6, 7, 1, 1});
    std::vector<float> y_ref(x.size());
    kernels::ref::permute(x.data(), s, perm, y_ref.data());
    CHECK(y_ref == y);
}

TEST_CASE("kernels: nearest-neighbour upsampling and its gradient equal the reference bit for bit") {
    for (const auto& size : {std::array<int64_t, 3>{1, 1, 1}, {3, 5, 7}, {70, 7, 7}, {2, 14, 3}}) {
        const int64_t planes = size[0], H = size[1], W = size[2];
        const std::vector<float> x = random_floats(planes * H * W, 1), dy = random_floats(4 * planes * H * W, 2);
        std::vector<float> y(dy.size()), y_ref(dy.size());
        kernels::upsample_nearest2x(x.data(), planes, H, W, y.data());
        kernels::ref::upsample_nearest2x(x.data(), planes, H, W, y_ref.data());
        CAPTURE(planes);
        CAPTURE(H);
        CAPTURE(W);
        CHECK(y == y_ref);
        CHECK(y[static_cast<size_t>(4 * W * H * planes - 1)] == x.back());
        for (const bool add : {false, true}) {
            std::vector<float> dx(x), dx_ref(x);  // accumulated into x's values, or overwritten
            kernels::upsample_nearest2x_backward(dy.data(), planes, H, W, dx.data(), add);
            kernels::ref::upsample_nearest2x_backward(dy.data(), planes, H, W, dx_ref.data(), add);
            CHECK(dx == dx_ref);
            CHECK(dx[0] == (add ? x[0] : 0.0f) + (dy[0] + dy[1] + dy[static_cast<size_t>(2 * W)] + dy[static_cast<size_t>(2 * W + 1)]));
        }
    }
}

// ---- convolution, GroupNorm (+ SiLU): the fast float paths against ref:: in double ----

namespace {
struct ConvTestCase {
    int64_t B, C, H, W, O, k, stride, pad;
};
// The U-Net's kinds (3x3 pad 1, 3x3 stride 2, 1x1) and odd ones; batches that split into
// several chunks of images, with leftovers. 3x3 stride 1 pad 1 with at least 16 input channels
// runs Winograd (19 -> 1 at 14x14 too): F(4x4, 3x3) but on the 1x1 and 2x3 images (F(2x2)), its tiles
// padding the image at 14x14, 5x9 and 3x8, with rows of more than one vector of tiles at
// 11x68; the weight gradient F(4x4) at 14x14 where its GEMMs sum over 48 tiles or more (24
// images: 4 chunks of 6), F(2x2) there with fewer, and at 7x7 F(4x4) with 48 images (4 chunks
// of 12) and F(2x2) with fewer; odd and non-square images for the edge tiles.
const ConvTestCase kConvCases[] = {{1, 3, 5, 6, 4, 3, 1, 1},    {3, 4, 7, 7, 5, 3, 1, 1},    {9, 8, 7, 7, 16, 3, 1, 1},
                                   {17, 5, 6, 6, 7, 3, 2, 1},   {4, 6, 5, 4, 3, 1, 1, 0},    {10, 16, 3, 3, 9, 1, 1, 0},
                                   {5, 3, 5, 4, 2, 2, 2, 0},    {3, 2, 4, 5, 3, 3, 1, 0},    {2, 32, 28, 28, 32, 3, 1, 1},
                                   {11, 24, 7, 7, 13, 3, 1, 1}, {6, 1, 9, 9, 33, 3, 1, 1},   {7, 19, 14, 14, 1, 3, 1, 1},
                                   {3, 16, 5, 9, 20, 3, 1, 1},  {5, 17, 14, 14, 16, 3, 1, 1}, {2, 16, 1, 1, 16, 3, 1, 1},
                                   {13, 16, 2, 3, 18, 3, 1, 1}, {20, 64, 7, 7, 64, 3, 1, 1},
                                   {2, 3, 9, 37, 4, 3, 1, 1},   {1, 2, 6, 67, 3, 3, 1, 1},  // rows of several vectors
                                   {2, 20, 4, 4, 16, 3, 1, 1},  {3, 16, 11, 68, 20, 3, 1, 1}, {4, 16, 3, 8, 17, 3, 1, 1},
                                   {24, 16, 14, 14, 16, 3, 1, 1}, {2, 3, 5, 70, 4, 3, 2, 1},  // stride-2 rows of 3 vectors
                                   {3, 16, 28, 28, 16, 3, 2, 1}, {2, 5, 7, 9, 3, 3, 2, 1},  // stride 2 from polyphase planes,
                                   {2, 3, 9, 8, 4, 5, 2, 2},     {3, 4, 6, 6, 5, 1, 2, 0},  // and where they do not fit
                                   {2, 3, 8, 8, 2, 3, 2, 0},     {48, 16, 7, 7, 16, 3, 1, 1},
                                   {2, 2, 1, 3, 3, 7, 2, 3},     {2, 2, 3, 1, 3, 7, 2, 3}};  // runs shifted by a row and more
}  // namespace

// The output and the gradients of the input and the weights are checked against the sums of
// |x| |w| (|dy| |w|, |dy| |x|) that make each element: Winograd's error scales with those, not
// with the result (F(4x4, 3x3) reaches 6 to 18 epsilons of them, 47 to 65 over a single
// channel, F(2x2) and im2col 1 to 2; winograd.hpp).
TEST_CASE("kernels: conv2d forward and backward match the reference") {
    const auto magnitudes = [](const std::vector<double>& v) {
        std::vector<double> a(v.size());
        for (size_t i = 0; i < v.size(); ++i) a[i] = std::abs(v[i]);
        return a;
    };
    for (const ConvTestCase& t : kConvCases) {
        const kernels::ConvGeometry g{t.C, t.H, t.W, t.O, t.k, t.k, t.stride, t.pad};
        const int64_t P = g.Ho() * g.Wo(), nx = t.B * t.C * t.H * t.W, ny = t.B * t.O * P, nw = t.O * g.K();
        const std::vector<float> x = random_floats(nx, 1), w = random_floats(nw, 2), b = random_floats(t.O, 3),
                                 dy = random_floats(ny, 4);
        const bool with_residual = (&t - kConvCases) % 2 == 0;  // a residual connection added as y is written
        const std::vector<float> residual = with_residual ? random_floats(ny, 8) : std::vector<float>(static_cast<size_t>(ny));
        std::vector<float> y(static_cast<size_t>(ny)), dx = random_floats(nx, 5), dw = random_floats(nw, 6),
                           db = random_floats(t.O, 7);
        std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy), yd(y.size()),
                            dxd = to_double(dx), dwd = to_double(dw), dbd = to_double(db), rd = to_double(residual);
        // the bounds: the same sums over magnitudes
        std::vector<double> y_bound(y.size()), dx_bound = magnitudes(dxd), dw_bound = magnitudes(dwd);
        kernels::ref::conv2d_forward(magnitudes(xd).data(), t.B, magnitudes(wd).data(), magnitudes(bd).data(), g, y_bound.data(),
                                     magnitudes(rd).data());
        kernels::ref::conv2d_backward(magnitudes(xd).data(), t.B, magnitudes(wd).data(), g, magnitudes(dyd).data(),
                                      dx_bound.data(), dw_bound.data(), static_cast<double*>(nullptr));
        const bool f4 = kernels::conv_detail::use_winograd(g) && kernels::winograd::forward_tiles(t.H, t.W).m == 4;
        // F(4x4)'s error is largest where the sum runs over one channel: in the input gradient
        // of 19 -> 1 (dy's one channel) up to 47 epsilons, 65 in the scalar build (no fused
        // multiply-adds); at most 18 with 16 channels or more
        const double eps = f4 ? 40.0 : 4.0, eps_dx = f4 && t.O < 16 ? 96.0 : eps;
        y.assign(y.size(), std::numeric_limits<float>::quiet_NaN());  // the forward writes every element
        kernels::conv2d_forward(x.data(), t.B, w.data(), b.data(), g, y.data(), with_residual ? residual.data() : nullptr);
        kernels::ref::conv2d_forward(xd.data(), t.B, wd.data(), bd.data(), g, yd.data(), rd.data());
        kernels::conv2d_backward(x.data(), t.B, w.data(), g, dy.data(), dx.data(), dw.data(), db.data());
        kernels::ref::conv2d_backward(xd.data(), t.B, wd.data(), g, dyd.data(), dxd.data(), dwd.data(), dbd.data());
        INFO("B " << t.B << " C " << t.C << " " << t.H << "x" << t.W << " O " << t.O << " k " << t.k << " stride " << t.stride
                  << " pad " << t.pad << " F(4x4, 3x3) " << f4 << " residual " << with_residual);
        check_bounded(y.data(), yd.data(), y_bound.data(), ny, eps, "conv2d_forward");
        check_bounded(dx.data(), dxd.data(), dx_bound.data(), nx, eps_dx, "conv2d_backward dx");
        check_bounded(dw.data(), dwd.data(), dw_bound.data(), nw, eps, "conv2d_backward dw");
        check_close(db.data(), dbd.data(), t.O, static_cast<double>(t.B * P), "conv2d_backward db");
        // dx overwritten rather than added to: it starts as NaN
        dx.assign(dx.size(), std::numeric_limits<float>::quiet_NaN());
        dxd.assign(dxd.size(), std::numeric_limits<double>::quiet_NaN());
        dx_bound.assign(dx_bound.size(), 0.0);
        kernels::ref::conv2d_backward(xd.data(), t.B, magnitudes(wd).data(), g, magnitudes(dyd).data(), dx_bound.data(),
                                      static_cast<double*>(nullptr), static_cast<double*>(nullptr));
        kernels::conv2d_backward(x.data(), t.B, w.data(), g, dy.data(), dx.data(), static_cast<float*>(nullptr), static_cast<float*>(nullptr), false);
        kernels::ref::conv2d_backward(xd.data(), t.B, wd.data(), g, dyd.data(), dxd.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr), false);
        check_bounded(dx.data(), dxd.data(), dx_bound.data(), nx, eps_dx, "conv2d_backward dx overwritten");
    }
}

TEST_CASE("kernels: conv2d is bitwise the same for 1 and 2 threads") {
    for (const ConvTestCase& t : {ConvTestCase{64, 16, 7, 7, 16, 3, 1, 1}, ConvTestCase{13, 8, 14, 14, 8, 3, 2, 1},
                                  ConvTestCase{9, 20, 14, 14, 24, 3, 1, 1},
                                  ConvTestCase{1, 8, 9, 9, 4, 3, 1, 1}, ConvTestCase{20, 12, 5, 5, 6, 1, 1, 0}}) {
        const kernels::ConvGeometry g{t.C, t.H, t.W, t.O, t.k, t.k, t.stride, t.pad};
        const int64_t P = g.Ho() * g.Wo(), nx = t.B * t.C * t.H * t.W, ny = t.B * t.O * P, nw = t.O * g.K();
        const std::vector<float> x = random_floats(nx, 1), w = random_floats(nw, 2), b = random_floats(t.O, 3),
                                 dy = random_floats(ny, 4);
        std::vector<std::vector<float>> out[2];
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            std::vector<float> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx)), dw(static_cast<size_t>(nw)),
                db(static_cast<size_t>(t.O));
            kernels::conv2d_forward(x.data(), t.B, w.data(), b.data(), g, y.data());
            kernels::conv2d_backward(x.data(), t.B, w.data(), g, dy.data(), dx.data(), dw.data(), db.data());
            out[threads - 1] = {y, dx, dw, db};
        }
        INFO("B " << t.B << " C " << t.C << " k " << t.k << " stride " << t.stride);
        for (size_t i = 0; i < 4; ++i)
            CHECK(std::memcmp(out[0][i].data(), out[1][i].data(), out[0][i].size() * sizeof(float)) == 0);
    }
    set_num_threads(2);
}

// Winograd keeps the forward pass's transformed weights from call to call (forward_weights):
// a kept transform must never outlive the weights it was made from.
TEST_CASE("kernels: Winograd's kept weight transforms follow weights changed in place and shapes at the same address") {
    const kernels::ConvGeometry g{16, 7, 7, 16, 3, 3, 1, 1}, half{16, 7, 7, 8, 3, 3, 1, 1};
    REQUIRE(kernels::conv_detail::use_winograd(g));
    const std::vector<float> x = random_floats(3 * 16 * 49, 1);
    std::vector<float> w = random_floats(16 * 16 * 9, 2);
    const auto conv = [&](const kernels::ConvGeometry& geometry, const float* weights) {
        std::vector<float> y(static_cast<size_t>(3 * geometry.O * 49));
        kernels::conv2d_forward(x.data(), 3, weights, static_cast<const float*>(nullptr), geometry, y.data());
        return y;
    };
    const std::vector<float> first = conv(g, w.data());
    CHECK(conv(g, w.data()) == first);  // kept: bitwise the fresh transform
    w[5 * 9 + 4] += 0.5f;               // output channel 0, input channel 5: in place, at the same address
    const std::vector<float> changed = conv(g, w.data());
    CHECK(changed != first);
    const std::vector<float> copy = w;  // the same weights elsewhere: transformed afresh
    CHECK(conv(g, copy.data()) == changed);
    CHECK(conv(half, w.data()) == conv(half, copy.data()));  // the first 8 output channels, same address
    CHECK(std::equal(changed.begin(), changed.begin() + 8 * 49, conv(half, w.data()).begin()));
}

TEST_CASE("kernels: GroupNorm and fused GroupNorm + SiLU match the reference") {
    struct Case {
        int64_t B, C, HW, G;
        double lo, hi;
    };
    for (const Case& c : {Case{2, 4, 9, 2, -1, 1}, Case{3, 32, 49, 8, -2, 3}, Case{2, 64, 196, 8, -1, 1},
                          Case{1, 6, 17, 3, 20, 22}, Case{2, 8, 1, 4, -1, 1}}) {
        const int64_t n = c.B * c.C * c.HW, k = c.C / c.G * c.HW;
        const std::vector<float> x = random_floats(n, 1, c.lo, c.hi), gamma = random_floats(c.C, 2, 0.5, 1.5),
                                 beta = random_floats(c.C, 3), dy = random_floats(n, 4);
        const std::vector<double> xd = to_double(x), gd = to_double(gamma), bd = to_double(beta), dyd = to_double(dy);
        for (const bool silu : {false, true})
        for (const bool add_dx : {true, false}) {  // dx added to, or overwritten (it starts as NaN)
            std::vector<float> y(static_cast<size_t>(n)), mean(static_cast<size_t>(c.B * c.G)), rstd(mean.size());
            std::vector<double> ydd(y.size()), md(mean.size()), rd(mean.size());
            std::vector<float> dx = random_floats(n, 5), dg = random_floats(c.C, 6), db = random_floats(c.C, 7);
            if (!add_dx) dx.assign(dx.size(), std::numeric_limits<float>::quiet_NaN());
            std::vector<double> dxd = to_double(dx), dgd = to_double(dg), dbd = to_double(db);
            if (silu) {
                kernels::group_norm_silu_forward(x.data(), c.B, c.C, c.HW, c.G, gamma.data(), beta.data(), 1e-5, y.data(),
                                                 mean.data(), rstd.data());
                kernels::ref::group_norm_silu_forward(xd.data(), c.B, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, ydd.data(),
                                                      md.data(), rd.data());
                kernels::group_norm_silu_backward(x.data(), dy.data(), c.B, c.C, c.HW, c.G, gamma.data(), beta.data(),
                                                  mean.data(), rstd.data(), dx.data(), dg.data(), db.data(), add_dx);
                kernels::ref::group_norm_silu_backward(xd.data(), dyd.data(), c.B, c.C, c.HW, c.G, gd.data(), bd.data(),
                                                       md.data(), rd.data(), dxd.data(), dgd.data(), dbd.data(), add_dx);
            } else {
                kernels::group_norm_forward(x.data(), c.B, c.C, c.HW, c.G, gamma.data(), beta.data(), 1e-5, y.data(),
                                            mean.data(), rstd.data());
                kernels::ref::group_norm_forward(xd.data(), c.B, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, ydd.data(),
                                                 md.data(), rd.data());
                kernels::group_norm_backward(x.data(), dy.data(), c.B, c.C, c.HW, c.G, gamma.data(), mean.data(), rstd.data(),
                                             dx.data(), dg.data(), db.data(), add_dx);
                kernels::ref::group_norm_backward(xd.data(), dyd.data(), c.B, c.C, c.HW, c.G, gd.data(), md.data(), rd.data(),
                                                  dxd.data(), dgd.data(), dbd.data(), add_dx);
            }
            INFO("B " << c.B << " C " << c.C << " HW " << c.HW << " G " << c.G << " x in [" << c.lo << ", " << c.hi
                      << "] silu " << silu << " add_dx " << add_dx);
            check_close(y.data(), ydd.data(), n, static_cast<double>(k), "group_norm forward");
            check_close(mean.data(), md.data(), c.B * c.G, static_cast<double>(k), "group_norm mean");
            // Remade from the saved statistics (a released value): the same bits, float and double.
            std::vector<float> again(y.size());
            std::vector<double> again_d(ydd.size());
            if (silu) {
                kernels::group_norm_silu_forward(x.data(), c.B, c.C, c.HW, c.G, gamma.data(), beta.data(), 1e-5, again.data(),
                                                 mean.data(), rstd.data(), static_cast<const float*>(nullptr), true);
                kernels::ref::group_norm_silu_forward(xd.data(), c.B, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5,
                                                      again_d.data(), md.data(), rd.data(), static_cast<const double*>(nullptr), true);
            } else {
                kernels::group_norm_forward(x.data(), c.B, c.C, c.HW, c.G, gamma.data(), beta.data(), 1e-5, again.data(),
                                            mean.data(), rstd.data(), true);
                kernels::ref::group_norm_forward(xd.data(), c.B, c.C, c.HW, c.G, gd.data(), bd.data(), 1e-5, again_d.data(),
                                                 md.data(), rd.data(), true);
            }
            CHECK(again == y);
            CHECK(again_d == ydd);
            check_close(dx.data(), dxd.data(), n, static_cast<double>(k), "group_norm dx");
            check_close(dg.data(), dgd.data(), c.C, static_cast<double>(c.B * c.HW), "group_norm dgamma");
            check_close(db.data(), dbd.data(), c.C, static_cast<double>(c.B * c.HW), "group_norm dbeta");
        }
    }
}

TEST_CASE("kernels: GroupNorm + SiLU of x + shift (per image and channel) matches the reference") {
    const int64_t B = 3, C = 32, HW = 49, G = 8, n = B * C * HW, k = C / G * HW;
    const std::vector<float> x = random_floats(n, 1), gamma = random_floats(C, 2, 0.5, 1.5), beta = random_floats(C, 3),
                             dy = random_floats(n, 4), shift = random_floats(B * C, 5, -2, 2);
    const std::vector<double> xd = to_double(x), gd = to_double(gamma), bd = to_double(beta), dyd = to_double(dy),
                              sd = to_double(shift);
    for (const bool add_dx : {true, false}) {
        std::vector<float> y(static_cast<size_t>(n)), mean(static_cast<size_t>(B * G)), rstd(mean.size());
        std::vector<double> ydd(y.size()), md(mean.size()), rd(mean.size());
        std::vector<float> dx = random_floats(n, 6), dg = random_floats(C, 7), db = random_floats(C, 8),
                           ds = random_floats(B * C, 9);
        if (!add_dx) dx.assign(dx.size(), std::numeric_limits<float>::quiet_NaN());
        std::vector<double> dxd = to_double(dx), dgd = to_double(dg), dbd = to_double(db), dsd = to_double(ds);
        kernels::group_norm_silu_forward(x.data(), B, C, HW, G, gamma.data(), beta.data(), 1e-5, y.data(), mean.data(),
                                         rstd.data(), shift.data());
        kernels::ref::group_norm_silu_forward(xd.data(), B, C, HW, G, gd.data(), bd.data(), 1e-5, ydd.data(), md.data(),
                                              rd.data(), sd.data());
        kernels::group_norm_silu_backward(x.data(), dy.data(), B, C, HW, G, gamma.data(), beta.data(), mean.data(),
                                          rstd.data(), dx.data(), dg.data(), db.data(), add_dx, shift.data(), ds.data());
        kernels::ref::group_norm_silu_backward(xd.data(), dyd.data(), B, C, HW, G, gd.data(), bd.data(), md.data(), rd.data(),
                                               dxd.data(), dgd.data(), dbd.data(), add_dx, sd.data(), dsd.data());
        INFO("add_dx " << add_dx);
        check_close(y.data(), ydd.data(), n, static_cast<double>(k), "shifted group_norm_silu forward");
        check_close(dx.data(), dxd.data(), n, static_cast<double>(k), "shifted group_norm_silu dx");
        check_close(dg.data(), dgd.data(), C, static_cast<double>(B * HW), "shifted group_norm_silu dgamma");
        check_close(db.data(), dbd.data(), C, static_cast<double>(B * HW), "shifted group_norm_silu dbeta");
        check_close(ds.data(), dsd.data(), B * C, static_cast<double>(k), "shifted group_norm_silu dshift");
        std::vector<float> again(y.size());  // remade from the saved statistics: the same bits
        kernels::group_norm_silu_forward(x.data(), B, C, HW, G, gamma.data(), beta.data(), 1e-5, again.data(), mean.data(),
                                         rstd.data(), shift.data(), true);
        CHECK(again == y);
    }
}
