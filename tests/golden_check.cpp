// golden_check FILE: compares the U-Net with a golden file of torch_unet.py --export (any
// config: it is read from the file's metadata) and prints the largest error of the output,
// the loss and each gradient. Exits 0 only when all are within the tolerances of docs/testing.md.
#include <cstdio>
#include <exception>

#include "golden.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: golden_check FILE\n  FILE: a golden file written by torch_unet.py --export\n");
        return 2;
    }
    try {
        const golden::Report r = golden::compare(argv[1]);
        const auto meta = r.config.to_metadata();
        std::printf("%s: in_ch %s ch %s mult %s blocks %s attn %s groups %s res %s, batch %lld, %lld parameters\n", argv[1],
                    meta.at("in_ch").c_str(), meta.at("ch").c_str(), meta.at("mult").c_str(), meta.at("blocks").c_str(),
                    meta.at("attn").c_str(), meta.at("groups").c_str(), meta.at("res").c_str(),
                    static_cast<long long>(r.batch), static_cast<long long>(r.params));
        int failed = 0;
        for (const golden::Difference& d : r.rows) {
            std::printf("%-40s %.3e  (allowed %.0e)%s\n", d.name.c_str(), d.error, d.allowed, d.ok() ? "" : "  FAIL");
            failed += !d.ok();
        }
        std::printf("%d of %zu compared tensors within tolerance\n", static_cast<int>(r.rows.size()) - failed, r.rows.size());
        return failed == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "golden_check: %s\n", e.what());
        return 2;
    }
}
