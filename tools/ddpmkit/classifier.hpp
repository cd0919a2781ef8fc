// ddpmkit classifier: trains the small classifier whose features `ddpmkit fd` compares in.
#pragma once

#include <ddpmkit/eval/classifier.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

namespace cli {

// The classifier takes 28x28 gray images.
inline const std::vector<std::string> kGrayDataSets = {"fashion-mnist", "mnist", "shapes"};

inline int cmd_classifier(int argc, char** argv) {
    Flags f("classifier", "Trains the small Fashion-MNIST classifier (eval/classifier.hpp) whose 128 features\n"
                          "`ddpmkit fd` compares samples in, and reports its test accuracy.",
            concat({{"out", "FILE", "where to save it (its folder is created)", "classifier.safetensors"},
                    {"epochs", "N", "passes over the training set", "5"},
                    {"seed", "S", "random seed", "0"}},
                   {data_flags("28x28 gray images to classify", kGrayDataSets)}));
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", kGrayDataSets), out = f.str("out");
    eval::ClassifierTrainOptions options;
    options.epochs = f.integer("epochs", 1);
    options.seed = static_cast<uint64_t>(f.integer("seed", 0));
    prepare_output_file(out);
    const ImageDataset train_set = load_data(data_name, f.str("data-dir"), true);
    const ImageDataset test_set = load_data(data_name, f.str("data-dir"), false);
    eval::Classifier model(options.seed);
    std::unique_ptr<ProgressLine> progress;
    const double accuracy = eval::train_classifier(model, train_set, test_set, options, [&](const eval::ClassifierProgress& p) {
        if (!progress) progress = std::make_unique<ProgressLine>(p.total_steps);
        progress->update(p.step, {{"loss", p.loss}, {"accuracy", p.batch_accuracy}});
    });
    progress.reset();
    eval::save_classifier(model, out, {{"test_accuracy", std::to_string(accuracy)}, {"data", data_name}});
    std::printf("test accuracy %.2f%% on %lld images; wrote %s\n", 100 * accuracy, static_cast<long long>(test_set.size()),
                out.c_str());
    return 0;
}

}  // namespace cli
