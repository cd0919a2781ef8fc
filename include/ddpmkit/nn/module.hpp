// ddpmkit — Module: named parameters (dotted names, as a PyTorch state_dict), children,
// train/eval mode, and the state saved to and loaded from safetensors.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/io/safetensors.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace nn {

template <class T>
class Module {
public:
    Module() = default;
    Module(const Module&) = delete;  // parameters and children are registered by address
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    // Every parameter under its dotted name: own ones first, then each child's, in
    // registration order (PyTorch's named_parameters order).
    std::vector<std::pair<std::string, Var<T>*>> named_parameters() {
        std::vector<std::pair<std::string, Var<T>*>> out;
        collect("", out);
        return out;
    }
    std::vector<Var<T>*> parameters() {
        std::vector<Var<T>*> out;
        for (auto& [name, p] : named_parameters()) out.push_back(p);
        return out;
    }
    int64_t num_parameters() {
        int64_t n = 0;
        for (auto& [name, p] : named_parameters()) n += p->numel();
        return n;
    }
    void zero_grad() {
        for (Var<T>* p : parameters()) p->zero_grad();
    }
    // Training mode (dropout active) or evaluation mode, for this module and its children.
    void train(bool on = true) {
        training_ = on;
        for (auto& [name, child] : children_) child->train(on);
    }
    void eval() { train(false); }
    bool training() const { return training_; }

    // The parameters as a safetensors file, under their dotted names.
    void save(const std::string& path) {
        safetensors::Writer writer;
        for (auto& [name, p] : named_parameters()) writer.add(name, p->value());
        writer.write(path);
    }
    // Copies every parameter from `file`. Names and shapes must match exactly; all
    // mismatches are reported at once. With ignore_unexpected, tensors of the file that
    // are not parameters (a golden file's inputs and gradients) are skipped.
    void load(const safetensors::File& file, bool ignore_unexpected = false) {
        std::vector<std::string> missing, misshaped, unexpected;
        std::set<std::string> known;
        for (auto& [name, p] : named_parameters()) {
            known.insert(name);
            if (!file.contains(name))
                missing.push_back(name);
            else if (file.info(name).shape != p->shape())
                misshaped.push_back(name + " (file " + file.info(name).shape.str() + ", model " + p->shape().str() + ")");
        }
        if (!ignore_unexpected)
            for (const std::string& name : file.names())
                if (!known.count(name)) unexpected.push_back(name);
        if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
            std::string msg = "Module::load from " + file.origin() + ":";
            auto list = [&msg](const char* what, const std::vector<std::string>& names) {
                if (names.empty()) return;
                msg += std::string(" ") + what + " " + std::to_string(names.size()) + " [";
                for (size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + names[i];
                msg += "];";
            };
            list("missing", missing);
            list("mis-shaped", misshaped);
            list("unexpected", unexpected);
            throw std::runtime_error(msg);
        }
        for (auto& [name, p] : named_parameters()) p->value().copy_from(file.get<T>(name));
    }
    void load(const std::string& path, bool ignore_unexpected = false) { load(safetensors::File::read(path), ignore_unexpected); }

protected:
    Var<T>& register_parameter(const std::string& name, Var<T>& p) {
        params_.emplace_back(name, &p);
        return p;
    }
    template <class M>
    M& register_module(const std::string& name, M& child) {
        children_.emplace_back(name, &child);
        return child;
    }

private:
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Var<T>*>>& out) {
        for (auto& [name, p] : params_) out.emplace_back(prefix + name, p);
        for (auto& [name, child] : children_) child->collect(prefix + name + ".", out);
    }

    std::vector<std::pair<std::string, Var<T>*>> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
};

// An ordered list of owned modules named "0", "1", ... (torch.nn.ModuleList).
template <class T>
class ModuleList : public Module<T> {
public:
    template <class M>
    M& push_back(std::unique_ptr<M> m) {
        M& ref = *m;
        this->register_module(std::to_string(items_.size()), ref);
        items_.push_back(std::move(m));
        return ref;
    }
    size_t size() const { return items_.size(); }
    Module<T>& operator[](size_t i) { return *items_[i]; }

private:
    std::vector<std::unique_ptr<Module<T>>> items_;
};

}  // namespace nn
DDPMKIT_END_NAMESPACE
