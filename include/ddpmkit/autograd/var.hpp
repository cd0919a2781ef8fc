// ddpmkit — reverse-mode automatic differentiation: Var, the graph and backward.
//
// A Var is a value with, once backward has run, a gradient. Every op on Vars that need
// gradients records a Node: its parents and a function that turns the node's gradient
// into contributions to the parents' gradients (chain rule; contributions accumulate,
// +=). backward() sorts the graph topologically with an explicit stack and runs those
// functions in reverse order, so neither backward nor freeing the graph recurses: a
// chain of 100,000 ops is fine.
#pragma once

#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/tensor.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace autograd {

inline bool& grad_mode() {
    thread_local bool enabled = true;
    return enabled;
}

// Anomaly detection (AnomalyGuard): the names given to leaves (a module's parameters), and
// whether it is on. Off, it costs nothing; on, a pass over every value and gradient.
struct Anomaly {
    bool on = false;
    std::unordered_map<const void*, std::string> names;  // Node* -> parameter name
};
inline Anomaly& anomaly() {
    thread_local Anomaly a;
    return a;
}

// The first op whose forward value or backward gradient is NaN or infinite, found by an
// AnomalyGuard: the message names the op, the pass, the shape and the element.
class AnomalyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// where: how to find the op in a model (the nearest parameter), called only on failure.
template <class T, class Where>
void check_finite(const Tensor<T>& t, const std::string& what, Where&& where) {
    for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(static_cast<double>(t.data()[i])))
            throw AnomalyError("anomaly: " + what + " " + t.shape().str() + " has " + (std::isnan(static_cast<double>(t.data()[i])) ? "NaN" : "an infinity") +
                               " at element " + std::to_string(i) + where());
}

template <class T>
struct Node {
    Tensor<T> value;
    Tensor<T> grad;  // undefined until something flows into it
    bool requires_grad = false;
    const char* op = "leaf";
    std::vector<std::shared_ptr<Node>> parents;
    std::function<void(Node&)> backward;  // reads grad, accumulates into the parents' grads
    // Makes the value again from the parents' values, for ops whose value is cheap to remake
    // (a normalization, a copy): once the value is released (Var::release), the backward pass
    // remakes it for the first step that reads it and frees it after the last. Such an op's own
    // backward must not read its value.
    std::function<Tensor<T>(const Node&)> recompute;
    bool released = false;

    // The gradient buffer, zero-filled on first use.
    Tensor<T>& grad_buffer() {
        if (!grad.defined()) grad = Tensor<T>(value.shape());
        return grad;
    }
    // The gradient buffer for a contribution that sets every element: on first use it is
    // left unset and `add` is false (overwrite it), afterwards `add` is true (add to it).
    Tensor<T>& grad_buffer(bool& add) {
        add = grad.defined();
        if (!add) grad = Tensor<T>::empty(value.shape());
        return grad;
    }
    bool is_leaf() const { return !backward; }

    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    // Frees the ancestors iteratively: a node about to die hands its parents to this
    // loop instead of destroying them from its own destructor.
    ~Node() {
        std::vector<std::shared_ptr<Node>> pending = std::move(parents);
        while (!pending.empty()) {
            std::shared_ptr<Node> p = std::move(pending.back());
            pending.pop_back();
            if (p.use_count() == 1) {
                for (auto& q : p->parents) pending.push_back(std::move(q));
                p->parents.clear();
            }
        }
    }
};

}  // namespace autograd

template <class T>
class Var;

// While alive, every op of this thread checks its value, and every backward step the gradients
// it passes on, and throws autograd::AnomalyError at the first that is not finite (as
// torch.autograd.detect_anomaly). Parameters registered with name_leaves() are named.
class AnomalyGuard {
public:
    AnomalyGuard() : previous_(autograd::anomaly().on) { autograd::anomaly().on = true; }
    ~AnomalyGuard() {
        autograd::anomaly().on = previous_;
        if (!previous_) autograd::anomaly().names.clear();
    }
    AnomalyGuard(const AnomalyGuard&) = delete;
    AnomalyGuard& operator=(const AnomalyGuard&) = delete;

    // Names the leaves behind these variables in the messages (a module's named_parameters()).
    template <class T>
    void name_leaves(const std::vector<std::pair<std::string, Var<T>*>>& named) {
        for (const auto& [name, v] : named) autograd::anomaly().names[v->node().get()] = name;
    }

private:
    bool previous_;
};

// While alive, ops record no graph (inference, optimizer updates, finite differences).
class NoGradGuard {
public:
    NoGradGuard() : previous_(autograd::grad_mode()) { autograd::grad_mode() = false; }
    ~NoGradGuard() { autograd::grad_mode() = previous_; }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

template <class T>
class Var {
public:
    using Node = autograd::Node<T>;

    Var() = default;
    // A leaf holding `value`; with requires_grad, backward() fills its grad().
    explicit Var(Tensor<T> value, bool requires_grad = false) : node_(std::make_shared<Node>()) {
        node_->value = std::move(value);
        node_->requires_grad = requires_grad;
    }

    bool defined() const { return node_ != nullptr; }
    const Tensor<T>& value() const { return checked_value(); }
    Tensor<T>& value() { return checked_value(); }
    // The accumulated gradient (undefined before the first backward that reaches it).
    const Tensor<T>& grad() const { return node_->grad; }
    Tensor<T>& grad() { return node_->grad; }
    bool requires_grad() const { return node_->requires_grad; }
    const Shape& shape() const { return checked_value().shape(); }
    int dim() const { return checked_value().dim(); }
    int64_t size(int axis) const { return checked_value().size(axis); }
    int64_t numel() const { return checked_value().numel(); }
    T item() const { return checked_value().item(); }
    const char* op() const { return node_->op; }
    const std::shared_ptr<Node>& node() const { return node_; }

    // The same value, cut from the graph.
    Var detach() const { return Var(checked_value(), false); }
    // Frees this value until the backward pass needs it, which remakes it from the op's inputs
    // once, for the steps that read it: activation memory for a little compute. Ops whose value is
    // cheap to remake can (group_norm, group_norm_silu, concat, upsample_nearest2x); for any other
    // value, or outside a graph, it does nothing. Call it after the last forward op that reads it.
    void release() const {
        if (!node_->recompute || !node_->backward) return;
        node_->value = Tensor<T>();
        node_->released = true;
    }
    bool released() const { return node_->released; }

    // Sets the gradient to zeros (kept allocated, so optimizers can hold on to it).
    void zero_grad() {
        if (node_->grad.defined()) node_->grad.fill(T(0));
    }

    // Backpropagates from this scalar: d(this)/d(leaf) is added to every leaf's grad().
    void backward() const {
        if (numel() != 1) throw shape_error("backward", shape(), "is not a scalar: pass the output gradient");
        backward(Tensor<T>(shape(), T(1)));
    }
    // As backward(), and calls leaf_done(leaf) the moment each leaf's gradient is complete
    // (every op that reads the leaf has passed its share on): work on a gradient, such as
    // summing it over the processes of a data-parallel run, can start while the rest runs.
    void backward(const std::function<void(const Node&)>& leaf_done) const {
        if (numel() != 1) throw shape_error("backward", shape(), "is not a scalar: pass the output gradient");
        backward(Tensor<T>(shape(), T(1)), leaf_done);
    }
    // Backpropagates the output gradient `seed` (the shape of this value).
    void backward(const Tensor<T>& seed, const std::function<void(const Node&)>& leaf_done = nullptr) const {
        if (seed.shape() != shape()) throw shape_error("backward", shape(), seed.shape(), "(value, seed) differ");
        if (!node_->requires_grad) throw std::logic_error("backward: this value does not depend on any Var that requires grad");
        const std::vector<Node*> order = topological_order();
        for (Node* n : order)
            if (!n->is_leaf()) n->grad = Tensor<T>();  // interior gradients start from zero on every pass
        node_->grad_buffer();
        for (int64_t i = 0; i < seed.numel(); ++i) node_->grad.data()[i] += seed.data()[i];
        // A released value is remade by its first reader and freed once its last reader has run
        // (readers: the steps that take it as input, whose backward or remake may read it).
        std::unordered_map<Node*, int> readers;
        for (Node* n : order)
            for (const auto& p : n->parents)
                if (p->released) ++readers[p.get()];
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
            Node* n = *it;
            if (n->is_leaf()) {  // its consumers come after it in the order: all have run
                if (leaf_done) leaf_done(*n);
                continue;
            }
            if (n->grad.defined()) {
                for (const auto& p : n->parents) remake(*p);
                n->backward(*n);
                if (autograd::anomaly().on) check_backward(*n);
                n->grad = Tensor<T>();  // an interior gradient is not needed once passed on
            }
            for (const auto& p : n->parents)
                if (p->released && --readers[p.get()] == 0) p->value = Tensor<T>();
        }
    }

    // Records the result of an op: `value` computed from `inputs`, and the function that
    // propagates its gradient. Without grad mode or any input that needs a gradient it
    // is a plain constant.
    // With `recompute`, the value can be released (see release()).
    static Var make(Tensor<T> value, const char* op, std::vector<Var> inputs, std::function<void(Node&)> backward_fn,
                    std::function<Tensor<T>(const Node&)> recompute = nullptr) {
        if (autograd::anomaly().on)
            autograd::check_finite(value, std::string("the forward value of ") + op, [&] {
                std::vector<const Node*> from;
                for (const Var& v : inputs) from.push_back(v.node_.get());
                return nearest_parameter(from);
            });
        Var out(std::move(value), false);
        if (!autograd::grad_mode()) return out;
        bool needed = false;
        for (const Var& v : inputs) needed = needed || v.requires_grad();
        if (!needed) return out;
        out.node_->requires_grad = true;
        out.node_->op = op;
        for (Var& v : inputs) out.node_->parents.push_back(std::move(v.node_));
        out.node_->backward = std::move(backward_fn);
        out.node_->recompute = std::move(recompute);
        return out;
    }

private:
    Tensor<T>& checked_value() const {
        if (node_->released)
            throw std::logic_error(std::string("the value of ") + node_->op +
                                   " was read after release(): release a value only after its last forward use");
        return node_->value;
    }
    // Remakes a released value that is not at hand (and first any released input it is made from).
    static void remake(Node& n) {
        if (!n.released || n.value.defined()) return;
        for (const auto& p : n.parents) remake(*p);
        n.value = n.recompute(n);
    }

    // The gradients n's backward step passed to its inputs, each named by its op or parameter.
    static void check_backward(const Node& n) {
        for (size_t k = 0; k < n.parents.size(); ++k) {
            const Node& p = *n.parents[k];
            if (!p.requires_grad || !p.grad.defined()) continue;
            const auto named = autograd::anomaly().names.find(&p);
            const std::string input = named != autograd::anomaly().names.end() ? "parameter " + named->second
                                      : p.is_leaf()                             ? std::string("a leaf")
                                                                                : std::string("the output of ") + p.op;
            autograd::check_finite(p.grad,
                                   std::string("the gradient that the backward of ") + n.op + " passed to its input " +
                                       std::to_string(k) + " (" + input + "),",
                                   [&] { return named != autograd::anomaly().names.end() ? std::string() : nearest_parameter({&n}); });
        }
    }

    // Where an op sits in a model: the named parameter closest upstream of these nodes (breadth
    // first), as " (nearest parameter upstream: NAME)", or nothing when none is named.
    static std::string nearest_parameter(std::vector<const Node*> frontier) {
        const auto& names = autograd::anomaly().names;
        std::unordered_set<const Node*> seen(frontier.begin(), frontier.end());
        for (size_t i = 0; i < frontier.size(); ++i) {
            const auto named = names.find(frontier[i]);
            if (named != names.end()) return " (nearest parameter upstream: " + named->second + ")";
            for (const auto& p : frontier[i]->parents)
                if (seen.insert(p.get()).second) frontier.push_back(p.get());
        }
        return "";
    }

    // Parents before children, only nodes that need a gradient; iterative DFS.
    std::vector<Node*> topological_order() const {
        std::vector<Node*> order;
        std::unordered_set<Node*> seen;
        std::vector<std::pair<Node*, size_t>> stack{{node_.get(), 0}};
        seen.insert(node_.get());
        while (!stack.empty()) {
            auto& [n, next] = stack.back();
            if (next < n->parents.size()) {
                Node* p = n->parents[next++].get();
                if (p->requires_grad && seen.insert(p).second) stack.push_back({p, 0});
            } else {
                order.push_back(n);
                stack.pop_back();
            }
        }
        return order;
    }

    std::shared_ptr<Node> node_;
};

using VarF = Var<float>;
using VarD = Var<double>;

DDPMKIT_END_NAMESPACE
