// ddpmkit — the Frechet distance between two Gaussians fitted to feature sets, the formula
// of the FID (Heusel et al. 2017, arXiv:1706.08500; Dowson & Landau 1982):
//   d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2).
// Everything is computed in double with Eigen, whatever the type of the features.
// Shape letters: N samples, D feature dimensions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

// Eigen 3.4 warns under -Wall -Wextra -Wpedantic: its AVX and AVX-512 bfloat16 packets
// declare unused variables, its Half.h uses a compound literal (clang). Silence those two
// for Eigen's headers only, however their path reaches the compiler (CMake's imported
// target makes it -isystem, a pkg-config dependency in Meson gives a plain -I).
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-variable"
#pragma clang diagnostic ignored "-Wc99-extensions"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 in the AVX-512 intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <Eigen/Dense>
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/tensor.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace eval {

// The Gaussian fitted to N feature vectors: their mean and their unbiased covariance.
struct FeatureStatistics {
    TensorD mean;        // [D]
    TensorD covariance;  // [D, D], sum_i (x_i - mean)(x_i - mean)^T / (N - 1)
    int64_t count = 0;   // N

    int64_t dim() const { return mean.numel(); }
};

namespace frechet_detail {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline Eigen::Map<const Eigen::VectorXd> as_vector(const TensorD& t) { return {t.data(), t.numel()}; }
inline Eigen::Map<const RowMatrixD> as_matrix(const TensorD& t) { return {t.data(), t.size(0), t.size(1)}; }

// The eigenvalues of a symmetric positive semi-definite matrix, with those that rounding
// pushed below zero set to 0. A covariance fitted to N <= D samples, or to features that
// span fewer than D dimensions, is singular: its zero eigenvalues come out of the solver
// as +-1e-16 or so, and sqrt of the negative ones would be NaN. The true values are >= 0,
// so clamping changes the result by rounding only.
inline Eigen::VectorXd clamped_eigenvalues(const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>& solver) {
    return solver.eigenvalues().cwiseMax(0.0);
}

// S^1/2 = V diag(sqrt(lambda)) V^T for symmetric positive semi-definite S = V diag(lambda) V^T.
inline Eigen::MatrixXd symmetric_sqrt(const Eigen::MatrixXd& s) {
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(s);
    if (solver.info() != Eigen::Success) throw std::runtime_error("frechet_distance: the eigensolver did not converge");
    const Eigen::MatrixXd& v = solver.eigenvectors();
    return v * clamped_eigenvalues(solver).cwiseSqrt().asDiagonal() * v.transpose();
}

// tr(M^1/2) = sum_i sqrt(lambda_i) for symmetric positive semi-definite M.
inline double trace_of_sqrt(const Eigen::MatrixXd& m) {
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m, Eigen::EigenvaluesOnly);
    if (solver.info() != Eigen::Success) throw std::runtime_error("frechet_distance: the eigensolver did not converge");
    return clamped_eigenvalues(solver).cwiseSqrt().sum();
}

inline void check_statistics(const FeatureStatistics& s, const char* which) {
    const int64_t D = s.dim();
    if (!s.mean.defined() || s.mean.dim() != 1 || D == 0 || !s.covariance.defined() || s.covariance.shape() != Shape{D, D})
        throw std::invalid_argument(std::string("frechet_distance: statistics ") + which + " have mean " +
                                    s.mean.shape().str() + " and covariance " + s.covariance.shape().str() +
                                    ", not [D] and [D, D] with D > 0");
    for (const TensorD* t : {&s.mean, &s.covariance})
        for (int64_t i = 0; i < t->numel(); ++i)
            if (!std::isfinite(t->data()[i]))
                throw std::invalid_argument(std::string("frechet_distance: statistics ") + which + " hold a non-finite " +
                                            (t == &s.mean ? "mean" : "covariance") + " entry at flat index " +
                                            std::to_string(i));
    // The eigensolver reads one triangle only: a covariance that is not symmetric is an error
    // rather than silently half-used.
    const double tolerance = 1e-9 * as_matrix(s.covariance).cwiseAbs().maxCoeff();
    for (int64_t i = 0; i < D; ++i)
        for (int64_t j = 0; j < i; ++j)
            if (std::abs(s.covariance(i, j) - s.covariance(j, i)) > tolerance)
                throw std::invalid_argument(std::string("frechet_distance: the covariance of statistics ") + which +
                                            " is not symmetric: entry (" + std::to_string(i) + ", " + std::to_string(j) +
                                            ") is " + std::to_string(s.covariance(i, j)) + ", (" + std::to_string(j) +
                                            ", " + std::to_string(i) + ") is " + std::to_string(s.covariance(j, i)));
}

}  // namespace frechet_detail

// The mean and unbiased covariance of the rows of features [N, D] (float or double), N >= 2.
// Two passes in double: the mean first, then the covariance of the centred rows.
template <class T>
FeatureStatistics feature_statistics(const Tensor<T>& features) {
    static_assert(std::is_floating_point<T>::value, "feature_statistics: float or double features");
    if (!features.defined() || features.dim() != 2 || features.size(1) == 0)
        throw std::invalid_argument("feature_statistics: features " + features.shape().str() + " are not [N, D] with D > 0");
    const int64_t N = features.size(0), D = features.size(1);
    if (N < 2)
        throw std::invalid_argument("feature_statistics: " + std::to_string(N) +
                                    " sample(s); a covariance needs at least 2");
    for (int64_t i = 0; i < N * D; ++i)
        if (!std::isfinite(features.data()[i]))
            throw std::invalid_argument("feature_statistics: feature " + std::to_string(i % D) + " of sample " +
                                        std::to_string(i / D) + " is not finite (" + std::to_string(features.data()[i]) +
                                        ")");
    using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMatrix> x(features.data(), N, D);
    FeatureStatistics s{TensorD({D}), TensorD({D, D}), N};
    Eigen::Map<Eigen::VectorXd> mean(s.mean.data(), D);
    mean = x.template cast<double>().colwise().sum().transpose() / static_cast<double>(N);
    const frechet_detail::RowMatrixD centred = x.template cast<double>().rowwise() - mean.transpose();
    // sum_i c_i c_i^T / (N - 1) as a symmetric rank-N update: half the work of a GEMM, an
    // exactly symmetric result, and no threads (Eigen's parallel GEMM spin-waits, which
    // stalls on a loaded machine).
    Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(D, D);
    lower.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose(), 1.0 / static_cast<double>(N - 1));
    Eigen::Map<frechet_detail::RowMatrixD>(s.covariance.data(), D, D) = lower.selfadjointView<Eigen::Lower>();
    return s;
}

// The squared Frechet distance d^2 between N(mu_a, S_a) and N(mu_b, S_b), the number the FID
// reports (Heusel et al. 2017). The matrix square root is taken of the symmetric
// S_a^1/2 S_b S_a^1/2 (similar to S_a S_b, so the trace is the same) with a symmetric
// eigensolver, rather than of the non-symmetric S_a S_b with a general sqrtm.
inline double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
    frechet_detail::check_statistics(a, "a");
    frechet_detail::check_statistics(b, "b");
    if (a.dim() != b.dim())
        throw std::invalid_argument("frechet_distance: statistics of " + std::to_string(a.dim()) + "-d and " +
                                    std::to_string(b.dim()) + "-d features do not compare");
    using frechet_detail::as_matrix;
    using frechet_detail::as_vector;
    const double mean_term = (as_vector(a.mean) - as_vector(b.mean)).squaredNorm();  // |mu_a - mu_b|^2
    const Eigen::MatrixXd sa = as_matrix(a.covariance), sb = as_matrix(b.covariance);
    const Eigen::MatrixXd root_a = frechet_detail::symmetric_sqrt(sa);
    Eigen::MatrixXd middle = root_a * sb * root_a;  // S_a^1/2 S_b S_a^1/2
    middle = 0.5 * (middle + middle.transpose()).eval();  // symmetric up to rounding; make it exactly so
    const double d2 = mean_term + sa.trace() + sb.trace() - 2.0 * frechet_detail::trace_of_sqrt(middle);
    return std::max(d2, 0.0);  // a distance: only rounding can make it negative (equal statistics)
}

// feature_statistics of both sets, then their Frechet distance.
template <class T>
double frechet_distance(const Tensor<T>& features_a, const Tensor<T>& features_b) {
    return frechet_distance(feature_statistics(features_a), feature_statistics(features_b));
}

}  // namespace eval
DDPMKIT_END_NAMESPACE
