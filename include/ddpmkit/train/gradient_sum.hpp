// ddpmkit — the gradients of a data-parallel step, summed over the processes while the
// backward pass still runs.
//
// The parameters are cut into buckets of about bucket_bytes, taken in the reverse of their
// order (the backward pass completes the last layers' gradients first). backward() starts a
// bucket's sum (dist::Group::start_sum) as soon as the gradients of all its parameters are
// complete and lets the started sums advance at every parameter it passes; finish() starts the
// rest, waits for all and writes the sums into the gradients. The buckets start in their fixed
// order on every process (one ready early waits for those before it), so every process makes
// the same collectives whatever its graph, and the sums are the same bits run to run.
//
//   train::GradientSum sum(world, model.parameters(), 1 << 20);
//   sum.backward(loss);  // loss.backward(), the sums on the way
//   sum.finish();        // every gradient is now the sum over the processes
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/dist/group.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace train {

inline constexpr int64_t kDefaultBucketBytes = int64_t(1) << 20;

class GradientSum {
public:
    // bucket_bytes <= 0: one bucket, which starts when the backward pass is over.
    GradientSum(dist::Group& group, std::vector<VarF*> params, int64_t bucket_bytes) : group_(group), params_(std::move(params)) {
        const int64_t bucket_items = bucket_bytes > 0 ? std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(float))) : INT64_MAX;
        offset_.resize(params_.size());
        bucket_of_.resize(params_.size());
        int64_t at = 0;
        for (size_t k = params_.size(); k-- > 0;) {  // the last parameter first, at offset 0
            if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= bucket_items) buckets_.push_back({at, at, 0, 0});
            offset_[k] = at;
            bucket_of_[k] = buckets_.size() - 1;
            at += params_[k]->numel();
            buckets_.back().end = at;
            ++buckets_.back().params;
            index_[params_[k]->node().get()] = k;
        }
        flat_.resize(static_cast<size_t>(at));
        reset();
    }

    int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

    // loss.backward(), starting each bucket's sum as its gradients become complete.
    void backward(const VarF& loss) {
        loss.backward([this](const VarF::Node& leaf) {
            const auto it = index_.find(&leaf);
            if (it != index_.end()) done(it->second);
        });
    }

    // Starts the sums not started yet (all of them without backward()), waits for every one and
    // writes the sums into the gradients (defining those no gradient reached). Returns the time
    // spent in the group's calls (starting, advancing and waiting for the sums) since the last finish.
    double finish() {
        for (size_t k = 0; k < params_.size(); ++k)
            if (!done_[k]) done(k);
        timed([&] { group_.wait_sums(); });
        for (size_t k = 0; k < params_.size(); ++k) {
            VarF& p = *params_[k];
            if (!p.grad().defined()) p.grad() = TensorF(p.shape());
            std::copy(flat_.data() + offset_[k], flat_.data() + offset_[k] + p.numel(), p.grad().data());
        }
        const double seconds = seconds_;
        reset();
        return seconds;
    }

private:
    struct Bucket {
        int64_t begin, end;  // its items of the flat buffer
        int64_t params;      // how many parameters it holds
        int64_t pending;     // how many of them are not complete yet
    };

    void reset() {
        done_.assign(params_.size(), false);
        for (Bucket& b : buckets_) b.pending = b.params;
        started_ = 0;
        seconds_ = 0.0;
    }

    // Parameter k's gradient is complete: into the buffer; then the buckets ready in order start.
    void done(size_t k) {
        if (done_[k]) return;
        done_[k] = true;
        const VarF& p = *params_[k];
        float* to = flat_.data() + offset_[k];
        if (p.grad().defined()) std::copy(p.grad().data(), p.grad().data() + p.numel(), to);
        else std::fill(to, to + p.numel(), 0.0f);
        --buckets_[bucket_of_[k]].pending;
        timed([&] {
            for (; started_ < buckets_.size() && buckets_[started_].pending == 0; ++started_)
                group_.start_sum(flat_.data() + buckets_[started_].begin, buckets_[started_].end - buckets_[started_].begin);
            group_.progress_sums();
        });
    }

    template <class F>
    void timed(F&& f) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    dist::Group& group_;
    std::vector<VarF*> params_;
    std::vector<int64_t> offset_;       // of each parameter in flat_
    std::vector<size_t> bucket_of_;     // of each parameter
    std::vector<Bucket> buckets_;       // in the order they start
    std::unordered_map<const VarF::Node*, size_t> index_;  // a parameter's node -> its index
    std::vector<float> flat_;
    std::vector<bool> done_;
    size_t started_ = 0;
    double seconds_ = 0.0;
};

}  // namespace train
DDPMKIT_END_NAMESPACE
