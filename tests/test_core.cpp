// Tests of core/: Shape, Tensor<T>, the counter-based Rng, parallel loops.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"

using namespace ddpmkit;
using test::message_of;


TEST_CASE("core: Shape numel, strides, equality and printing") {
    const Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s.numel() == 24);
    CHECK(s.numel(1, 3) == 12);
    CHECK(s.strides() == Shape{12, 4, 1});
    CHECK(Shape{}.numel() == 1);
    CHECK(Shape{5, 0}.numel() == 0);
    CHECK(s.str() == "[2,3,4]");
    CHECK(s != Shape{2, 3});
    CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5, 6, 7}), std::length_error);
    CHECK_THROWS_AS(Shape({2, -1}), std::invalid_argument);
    Shape grown{2};
    CHECK_THROWS_AS(grown.push_back(-3), std::invalid_argument);
    // Sizes that would wrap around int64_t (or exceed any memory) are refused, not multiplied.
    CHECK(Shape{int64_t(1) << 24, int64_t(1) << 24}.numel() == Shape::kMaxNumel);
    CHECK_THROWS_WITH_AS(Shape({int64_t(1) << 24, int64_t(1) << 24, 2}).numel(), "Shape [16777216,16777216,2]: more than 2^48 elements",
                         std::length_error);
    CHECK_THROWS_AS(Shape({int64_t(1) << 62, 4, 4}).numel(), std::length_error);  // 2^66: wraps to 0 unchecked
    CHECK_THROWS_AS(TensorF({int64_t(4611686018427387904), 1, 28, 28}), std::length_error);
    // An empty shape has no elements, whatever its other extents, but its strides must not wrap.
    CHECK(Shape{0, 5, 7}.strides() == Shape{35, 7, 1});
    CHECK(Shape{3, 0, 7}.strides() == Shape{0, 7, 1});
    CHECK_THROWS_WITH_AS(Shape({0, int64_t(1) << 40, int64_t(1) << 40}).strides(),
                         "Shape [0,1099511627776,1099511627776]: a stride beyond 2^48 elements", std::length_error);
}

TEST_CASE("core: broadcast_shapes follows numpy and names both shapes on failure") {
    CHECK(broadcast_shapes("add", {2, 3, 4}, {3, 1}) == Shape{2, 3, 4});
    CHECK(broadcast_shapes("add", {1}, {5, 1, 2}) == Shape{5, 1, 2});
    CHECK(broadcast_shapes("add", {}, {7}) == Shape{7});
    const std::string msg = message_of<ShapeError>([] { broadcast_shapes("mul", {2, 3}, {4}); });
    CHECK(msg.find("mul") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(msg.find("[4]") != std::string::npos);
    CHECK(normalize_axis("sum", -1, {2, 3}) == 1);
    CHECK(message_of<ShapeError>([] { normalize_axis("sum", 2, {2, 3}); }).find("no axis 2") != std::string::npos);
}

TEST_CASE("core: Tensor construction, element access and bounds") {
    TensorF t({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.numel() == 6);
    CHECK(t.dim() == 2);
    CHECK(t.size(-1) == 3);
    CHECK(t(1, 2) == 6.0f);
    CHECK(t.at({0, 1}) == 2.0f);
    t(1, 0) = 40;
    CHECK(t.data()[3] == 40.0f);
    const std::string msg = message_of<std::out_of_range>([&] { t.at({2, 0}); });
    CHECK(msg.find("[2,0]") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK_THROWS_AS(t.at({0}), std::out_of_range);
    CHECK_THROWS_AS(TensorF({2, 2}, {1, 2, 3}), ShapeError);
    CHECK(TensorD::zeros({4}).data()[3] == 0.0);
    CHECK(TensorD::ones({4}).data()[3] == 1.0);
    CHECK(TensorF::scalar(2.5f).item() == 2.5f);
    CHECK_THROWS_AS(t.item(), ShapeError);
    CHECK(!TensorF().defined());
    CHECK(TensorF().numel() == 0);
    CHECK(reinterpret_cast<uintptr_t>(TensorF({3}).data()) % kAlignment == 0);
    Tensor<int64_t> ids({3}, {7, 8, 9});
    CHECK(ids(2) == 9);
}

TEST_CASE("core: reshape and slice share storage, clone does not") {
    TensorF t({2, 3}, {1, 2, 3, 4, 5, 6});
    TensorF r = t.reshape({3, 2});
    r(2, 1) = 60;
    CHECK(t(1, 2) == 60.0f);
    CHECK(r.shares_storage_with(t));
    const std::string msg = message_of<ShapeError>([&] { t.reshape({4, 2}); });
    CHECK(msg.find("reshape") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(msg.find("[4,2]") != std::string::npos);
    TensorF row = t.slice(1, 2);
    CHECK(row.shape() == Shape{1, 3});
    CHECK(row(0, 0) == 4.0f);
    CHECK_THROWS_AS(t.slice(1, 3), ShapeError);
    TensorF c = t.clone();
    c(0, 0) = -1;
    CHECK(t(0, 0) == 1.0f);
    CHECK(!c.shares_storage_with(t));
    TensorD d = t.cast<double>();
    CHECK(d(1, 2) == 60.0);
    TensorF e({2, 3});
    e.copy_from(t);
    CHECK(e(1, 1) == 5.0f);
    CHECK_THROWS_AS(e.copy_from(r), ShapeError);
}

TEST_CASE("core: large blocks are reused after they are freed, up to the cache limit") {
    BlockCache& cache = BlockCache::instance();
    cache.clear();
    const Shape big{300, 1000};  // 1.2 MB: cached
    const float* first = nullptr;
    {
        TensorF a = TensorF::empty(big);
        a.fill(7.0f);
        first = a.data();
        CHECK(reinterpret_cast<uintptr_t>(first) % kAlignment == 0);
    }
#if defined(__SANITIZE_ADDRESS__)
    CHECK(cache.cached_bytes() == 0);  // nothing is cached under AddressSanitizer
#else
    CHECK(cache.cached_bytes() == BlockCache::rounded(300 * 1000 * sizeof(float)));
    {
        const TensorF b(big);  // the same block, zero-filled again
        CHECK(b.data() == first);
        CHECK(cache.cached_bytes() == 0);
        for (int64_t i = 0; i < b.numel(); i += 997) CHECK(b.data()[i] == 0.0f);
    }
    cache.set_limit(0);  // over the limit: freed at once
    CHECK(cache.cached_bytes() == 0);
    { const TensorF c(big); }
    CHECK(cache.cached_bytes() == 0);
    cache.set_limit(size_t(1) << 30);
    { const TensorF small({10}); }  // below kMinCachedBytes: never cached
    CHECK(cache.cached_bytes() == 0);
#endif
}

TEST_CASE("core: printing elides long axes") {
    TensorF small({2, 2}, {1, 2, 3, 4});
    CHECK(small.str() == "Tensor[2,2]\n[[1, 2],\n [3, 4]]");
    TensorD lng({8}, {0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(lng.str() == "Tensor[8]\n[0, 1, 2, ..., 5, 6, 7]");
    CHECK(TensorF::scalar(3).str() == "Tensor[]\n3");
}

TEST_CASE("core: Rng is reproducible and independent of the thread count") {
    std::vector<float> a(10007), b(10007);
    set_num_threads(1);
    Rng r1(123);
    r1.normal(a.data(), static_cast<int64_t>(a.size()));
    set_num_threads(2);
    Rng r2(123);
    r2.normal(b.data(), static_cast<int64_t>(b.size()));
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);

    // The state is (seed, counter): a generator set to it continues the stream.
    Rng first(9);
    TensorD x1 = TensorD::randn({5}, first);
    Rng resumed(0);
    resumed.set_state(first.seed(), first.counter());
    TensorD x2 = TensorD::randn({7}, first), x3 = TensorD::randn({7}, resumed);
    CHECK(std::memcmp(x2.data(), x3.data(), 7 * sizeof(double)) == 0);
    CHECK(x1(0) != x2(0));
    Rng seed9(9), seed10(10);
    CHECK(TensorD::randn({1}, seed9).item() != TensorD::randn({1}, seed10).item());
}

TEST_CASE("core: parts of a draw (normal_part, uniform_part) are the whole draw's elements, whatever the cut") {
    const int64_t n = 1001;  // odd: a pair of numbers comes from one block, and cuts split pairs
    std::vector<double> whole_n(n), whole_u(n);
    Rng a(31, 5);
    a.normal(whole_n.data(), n);
    a.uniform(whole_u.data(), n);
    for (const auto& cuts : std::vector<std::vector<int64_t>>{{0, n}, {0, 1, n}, {0, 500, 501, n}, {0, 3, 4, 998, n}}) {
        CAPTURE(cuts.size());
        Rng b(31, 5);
        const Rng start = b;
        std::vector<double> parts_n(n), parts_u(n);
        for (size_t k = 0; k + 1 < cuts.size(); ++k) {  // every part from the same place, as processes would
            b = start;
            b.normal_part(parts_n.data() + cuts[k], n, cuts[k], cuts[k + 1]);
            b.uniform_part(parts_u.data() + cuts[k], n, cuts[k], cuts[k + 1]);
        }
        CHECK(parts_n == whole_n);
        CHECK(parts_u == whole_u);
        CHECK(b.counter() == a.counter());  // each part moves the generator past the whole draw
    }
}

TEST_CASE("core: Rng moments are those of N(mean, std^2) and U[lo, hi)") {
    const int64_t n = 200000;
    Rng rng(7);
    TensorD z = TensorD::randn({n}, rng, 1.5, 2.0);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) s += z(i);
    const double m = s / n;
    for (int64_t i = 0; i < n; ++i) s2 += (z(i) - m) * (z(i) - m);
    const double var = s2 / (n - 1);
    // 5 standard errors: sd(mean) = 2/sqrt(n), sd(var) = 4 sqrt(2/n).
    CHECK(std::abs(m - 1.5) < 5 * 2.0 / std::sqrt(double(n)));
    CHECK(std::abs(var - 4.0) < 5 * 4.0 * std::sqrt(2.0 / n));
    TensorF u = TensorF::rand({n}, rng, -1.0, 3.0);
    double su = 0, lo = 1e9, hi = -1e9;
    for (int64_t i = 0; i < n; ++i) {
        su += u(i);
        lo = std::min<double>(lo, u(i));
        hi = std::max<double>(hi, u(i));
    }
    CHECK(lo >= -1.0);
    CHECK(hi < 3.0);
    CHECK(std::abs(su / n - 1.0) < 5 * (4.0 / std::sqrt(12.0)) / std::sqrt(double(n)));
    // randint covers its range uniformly: each of 4 values about n/4 times.
    int counts[4] = {0, 0, 0, 0};
    for (int i = 0; i < 40000; ++i) counts[rng.randint(4)]++;
    for (int c : counts) CHECK(std::abs(c - 10000) < 5 * std::sqrt(40000 * 0.25 * 0.75));
}

TEST_CASE("core: deterministic_sum is bitwise the same for 1 and 2 threads") {
    std::vector<float> v(100003);
    Rng rng(3);
    rng.uniform(v.data(), static_cast<int64_t>(v.size()));
    auto partial = [&](int64_t b, int64_t e) {
        float s = 0;
        for (int64_t i = b; i < e; ++i) s += v[static_cast<size_t>(i)];
        return s;
    };
    set_num_threads(1);
    const float one = deterministic_sum<float>(static_cast<int64_t>(v.size()), 1000, partial);
    set_num_threads(2);
    const float two = deterministic_sum<float>(static_cast<int64_t>(v.size()), 1000, partial);
    CHECK(std::memcmp(&one, &two, sizeof(float)) == 0);
    double exact = 0;
    for (float x : v) exact += x;
    CHECK(std::abs(one - exact) < 1e-6 * 100 * exact);
}
