// ddpmkit — the autograd graph behind a value, as Graphviz DOT (dot -Tpng graph.dot -o graph.png):
// each value a node (its op, or its name for the leaves given one; its shape; whether it needs
// a gradient), each edge an input flowing into an op. Backward walks these edges in reverse.
// And what that graph keeps in memory until the backward pass, by op (graph_memory).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

// The graph of `root` with its inputs named by `names` (values not named show their op). Leaves
// that need a gradient are blue, constants grey and dashed, op results orange; the root has a
// double border. Node ids follow the order in which backward would finish them (inputs first),
// so the text is the same from run to run.
template <class T>
std::string graph_dot(const Var<T>& root, const std::vector<std::pair<std::string, Var<T>>>& names = {}) {
    using Node = autograd::Node<T>;
    if (!root.defined()) throw std::invalid_argument("graph_dot: the root Var is undefined");
    std::unordered_map<const Node*, std::string> name_of;
    for (const auto& [name, v] : names)
        if (v.defined()) name_of[v.node().get()] = name;
    auto quoted = [](const std::string& s) {
        std::string q = "\"";
        for (char c : s) q += c == '\n' ? std::string("\\n") : c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
        return q + "\"";
    };

    // Inputs before the ops that use them (iterative DFS, as backward orders them).
    std::unordered_map<const Node*, int> id;
    std::vector<const Node*> order;
    std::vector<std::pair<const Node*, size_t>> stack{{root.node().get(), 0}};
    id[root.node().get()] = -1;
    while (!stack.empty()) {
        auto& [n, next] = stack.back();
        if (next < n->parents.size()) {
            const Node* p = n->parents[next++].get();
            if (id.emplace(p, -1).second) stack.push_back({p, 0});
        } else {
            id[n] = static_cast<int>(order.size());
            order.push_back(n);
            stack.pop_back();
        }
    }

    std::string dot = "digraph autograd {\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n";
    for (const Node* n : order) {
        const auto named = name_of.find(n);
        const bool leaf = n->is_leaf();
        std::string label = named != name_of.end() ? named->second : leaf ? "leaf" : n->op;
        if (named != name_of.end() && !leaf) label += " = " + std::string(n->op);
        label += "\n" + (n->released ? std::string("released") : n->value.shape().str()) + "\n" + (n->requires_grad ? "requires grad" : "constant");
        const char* style = !leaf ? "fillcolor=\"#fdd0a2\"" : n->requires_grad ? "fillcolor=\"#c6dbef\"" : "fillcolor=\"#eeeeee\", style=\"rounded,filled,dashed\"";
        dot += "  n" + std::to_string(id[n]) + " [label=" + quoted(label) + ", " + style + (n == root.node().get() ? ", peripheries=2" : "") + "];\n";
    }
    for (const Node* n : order)
        for (const auto& p : n->parents) dot += "  n" + std::to_string(id[p.get()]) + " -> n" + std::to_string(id[n]) + ";\n";
    return dot + "}\n";
}

// The values held by the graph behind a value, for one op (or "leaf": parameters and inputs).
struct GraphMemory {
    std::string op;
    int64_t values = 0;
    int64_t bytes = 0;
};

// What the graph of `root` keeps until its backward pass, by op, largest first: every value
// not released (views of one tensor counted once). Tensors an op saves besides its value (the
// attention weights, GroupNorm's statistics) are not seen here.
template <class T>
std::vector<GraphMemory> graph_memory(const Var<T>& root) {
    using Node = autograd::Node<T>;
    if (!root.defined()) throw std::invalid_argument("graph_memory: the root Var is undefined");
    std::unordered_set<const Node*> seen{root.node().get()};
    std::unordered_set<const T*> counted;
    std::unordered_map<std::string, GraphMemory> by_op;
    std::vector<const Node*> pending{root.node().get()};
    while (!pending.empty()) {
        const Node* n = pending.back();
        pending.pop_back();
        for (const auto& p : n->parents)
            if (seen.insert(p.get()).second) pending.push_back(p.get());
        if (!n->value.defined() || !counted.insert(n->value.data()).second) continue;
        GraphMemory& m = by_op[n->op];
        m.op = n->op;
        m.values += 1;
        m.bytes += n->value.numel() * static_cast<int64_t>(sizeof(T));
    }
    std::vector<GraphMemory> out;
    for (const auto& kv : by_op) out.push_back(kv.second);
    std::sort(out.begin(), out.end(), [](const GraphMemory& a, const GraphMemory& b) { return a.bytes > b.bytes || (a.bytes == b.bytes && a.op < b.op); });
    return out;
}

DDPMKIT_END_NAMESPACE
