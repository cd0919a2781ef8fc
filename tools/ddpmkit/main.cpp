// ddpmkit — the command-line program: train a DDPM on a data set, sample from it, measure
// its bits/dim and its samples' Frechet distance, inspect safetensors files, time the U-Net.
// `ddpmkit COMMAND --help` explains each. One file per command; this one translation unit
// includes them all (the library is header-only: one compile instead of seven).
#define DDPMKIT_STB_IMPLEMENTATION  // this program compiles stb_image_write (see io/image.hpp)
#include <cstdio>
#include <map>
#include <string>

#include "bench.hpp"
#include "classifier.hpp"
#include "fd.hpp"
#include "inspect.hpp"
#include "nll.hpp"
#include "sample.hpp"
#include "tasks.hpp"
#include "train.hpp"
#if defined(DDPMKIT_WITH_MPI)
#include <ddpmkit/dist/mpi.hpp>
#endif

using namespace cli;

namespace {

const char* const kUsage =
    "usage: ddpmkit COMMAND [flags]   (ddpmkit COMMAND --help for its flags; ddpmkit --version)\n\n"
    "commands:\n"
    "  train       train a DDPM and write checkpoints, samples and the loss curve\n"
    "  sample      sample from a checkpoint with dpm, ddim, ddpm, euler, heun or pc (--class, --guidance)\n"
    "  inpaint     fill masked images: the replacement method or RePaint\n"
    "  denoise     remove Gaussian noise of known sigma (SDEdit, Tweedie), or image-to-image\n"
    "  superres    upsample images with a super-resolution checkpoint (train --task superres)\n"
    "  nll         test-set bits/dim: the variational bound, term by term\n"
    "  classifier  train the Fashion-MNIST classifier whose features fd uses\n"
    "  fd          Frechet distance between samples and the test set\n"
    "  inspect     list the tensors of a safetensors file\n"
    "  bench unet  time the reference U-Net's training and sampling steps (JSON, as torch_unet.py)\n";

}  // namespace

int main(int argc, char** argv) {
#if defined(DDPMKIT_WITH_MPI)
    dist::Mpi mpi(argc, argv);
    dist::MpiGroup world;
    process_group() = &world;
#endif
    if (argc < 2) {  // a usage error: the usage goes to stderr
        std::fprintf(stderr, "%s", kUsage);
        return 2;
    }
    if (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::printf("%s", kUsage);
        return 0;
    }
    if (std::string(argv[1]) == "--version") {
        std::printf("%s\n", kVersion.c_str());
        return 0;
    }
    const std::string command = argv[1];
    const std::map<std::string, int (*)(int, char**)> commands = {
        {"train", cmd_train}, {"sample", cmd_sample}, {"inpaint", cmd_inpaint}, {"denoise", cmd_denoise}, {"superres", cmd_superres}, {"nll", cmd_nll},
        {"classifier", cmd_classifier}, {"fd", cmd_fd}, {"inspect", cmd_inspect}, {"bench", cmd_bench}};
    const auto it = commands.find(command);
    if (it == commands.end()) {
        std::fprintf(stderr, "ddpmkit: unknown command \"%s\"\n\n%s", command.c_str(), kUsage);
        return 2;
    }
    // A process that fails alone ends them all: the others would wait for it forever. Every
    // process checks the flags, so a usage error is printed by rank 0 only.
    auto fail = [&](int code, const std::string& message) {
        const int rank = processes().rank(), size = processes().size();
        if (rank == 0 || code != 2) std::fprintf(stderr, "ddpmkit %s%s: %s\n", command.c_str(), size > 1 ? (" (rank " + std::to_string(rank) + ")").c_str() : "", message.c_str());
#if defined(DDPMKIT_WITH_MPI)
        if (size > 1 && code != 2) dist::Mpi::abort(code);
#endif
        return code;
    };
    try {
        if (processes().size() > 1 && command != "train" && command != "sample" && command != "nll" && command != "fd")
            throw UsageError("under mpirun train, sample, nll and fd run data parallel; run " + command + " as one process");
        return it->second(argc - 2, argv + 2);
    } catch (const UsageError& e) {
        return fail(2, std::string(e.what()) + " (see ddpmkit " + command + " --help)");
    } catch (const std::exception& e) {
        return fail(1, e.what());
    }
}
