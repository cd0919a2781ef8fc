// ddpmkit fd: the Frechet distance between samples and test images in the classifier's features.
#pragma once

#include <ddpmkit/eval/classifier.hpp>
#include <ddpmkit/eval/frechet.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

#include "common.hpp"

namespace cli {

inline int cmd_fd(int argc, char** argv) {
    Flags f("fd", "Frechet distance (Heusel et al. 2017) between samples and the test set, in the features of\n"
                  "a classifier trained by `ddpmkit classifier`. Both sets have the same size: the distance\n"
                  "is biased upwards for small sets, so compare numbers of the same --n only.",
            concat({{"classifier", "FILE", "classifier written by ddpmkit classifier", "classifier.safetensors"},
                    {"samples", "FILE", "samples written by ddpmkit sample --raw", ""},
                    {"n", "N", "images of each set (the first N samples and test images)", "10000"}},
                   {data_flags("the reference set (its test split)")}));
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", kDataSets);
    const int64_t wanted = f.integer("n", 2, kMaxImages);
    if (f.str("samples").empty()) throw UsageError("--samples FILE is required (ddpmkit sample --raw FILE writes one)");
    eval::Classifier model;
    eval::load_classifier(model, read_on_root(f.str("classifier")));
    const TensorF samples = read_on_root(f.str("samples")).get<float>("samples");
    const ImageDataset test = load_data(data_name, f.str("data-dir"), false);
    const int64_t n = std::min({wanted, samples.size(0), test.size()});
    if (n < 2) throw std::runtime_error("need at least 2 images in each set: " + f.str("samples") + " holds " +
                                        std::to_string(samples.size(0)));
    // Under mpirun each process computes the features of its share of the batches.
    const TensorF a = eval::classifier_features(model, samples.slice(0, n), 256, processes());
    const TensorF b = eval::classifier_features(model, test.images.slice(0, n), 256, processes());
    if (!processes().is_root()) return 0;
    std::printf("FD %.4f between %lld samples of %s and %lld test images of %s\n", eval::frechet_distance(a, b),
                static_cast<long long>(n), f.str("samples").c_str(), static_cast<long long>(n), data_name.c_str());
    return 0;
}

}  // namespace cli
