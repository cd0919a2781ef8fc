// ddpmkit program: command-line flags (--name value, --name=value, switches), checked as they
// are read: a wrong value is a UsageError that names the flag and what it takes.
#pragma once

#include <ddpmkit/config.hpp>
#include <ddpmkit/version.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

// A bad flag or value: the program prints it with a pointer to --help and exits 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// 0.5 as "0.5", 1e-3 as "0.001"
inline std::string shortest(double x) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
}

// "a, b or c"
inline std::string one_of(const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return out;
}

inline const std::string kVersion = std::string("ddpmkit ") + DDPMKIT_VERSION_STRING + " (" + ddpmkit::arch_name() + " kernels, " +
                                    (ddpmkit::has_openmp() ? "OpenMP" : "no OpenMP") + ")";

// --name value / --name=value flags with defaults; switches take no value.
class Flags {
public:
    // A flag: its name, the name of its value ("" for a switch), its help and default.
    struct Spec {
        std::string name, value_name, help, default_value;
    };
    using Specs = std::vector<Spec>;
    Flags(std::string command, std::string summary, std::vector<Spec> specs)
        : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {
        for (const Spec& s : specs_)
            if (!s.value_name.empty()) values_[s.name] = s.default_value;
    }
    // Returns false when --help or --version was asked for (and is printed): nothing to run.
    bool parse(int argc, char** argv, std::vector<std::string>* positional = nullptr) {
        for (int i = 0; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::printf("%s", usage().c_str());
                return false;
            }
            if (arg == "--version") {
                std::printf("%s\n", kVersion.c_str());
                return false;
            }
            if (arg.rfind("--", 0) != 0) {
                if (!positional) throw UsageError("unexpected argument \"" + arg + "\"");
                positional->push_back(arg);
                continue;
            }
            std::string name = arg.substr(2), value;
            const size_t eq = name.find('=');
            const bool inline_value = eq != std::string::npos;
            if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
            const Spec* spec = find(name);
            if (!spec) throw UsageError("unknown flag --" + name);
            if (spec->value_name.empty()) {  // a switch
                if (inline_value) throw UsageError("--" + name + " takes no value");
                switches_[name] = true;
                continue;
            }
            if (!inline_value) {
                if (i + 1 >= argc) throw UsageError("--" + name + " needs a value (" + spec->value_name + ")");
                value = argv[++i];
            }
            values_[name] = value;
            given_[name] = true;
        }
        return true;
    }
    std::string str(const std::string& name) const { return values_.at(name); }
    bool given(const std::string& name) const { return given_.count(name) != 0; }
    bool on(const std::string& name) const { return switches_.count(name) != 0; }
    // The flag's value as a whole number in [min, max].
    int64_t integer(const std::string& name, int64_t min = std::numeric_limits<int64_t>::min(),
                    int64_t max = std::numeric_limits<int64_t>::max()) const {
        const int64_t out = parsed<int64_t>(name, "a whole number", [](const std::string& v, size_t* used) { return std::stoll(v, used); });
        if (out < min) throw UsageError("--" + name + " must be at least " + std::to_string(min) + ", not " + str(name));
        if (out > max) throw UsageError("--" + name + " must be at most " + std::to_string(max) + ", not " + str(name));
        return out;
    }
    // The flag's value as comma-separated whole numbers, each at least min ("" is none).
    std::vector<int64_t> integers(const std::string& name, int64_t min) const {
        const std::string v = str(name);
        std::vector<int64_t> out;
        for (size_t begin = 0; !v.empty() && begin <= v.size();) {
            const size_t end = std::min(v.find(',', begin), v.size());
            const std::string item = v.substr(begin, end - begin);
            size_t used = 0;
            int64_t x = 0;
            try {
                x = std::stoll(item, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (item.empty() || used != item.size() || x < min)
                throw UsageError("--" + name + " takes whole numbers of at least " + std::to_string(min) + ", separated by commas, not \"" + v + "\"");
            out.push_back(x);
            begin = end + 1;
        }
        return out;
    }
    // The flag's value as a finite number, at least `min`.
    double number(const std::string& name, double min = -std::numeric_limits<double>::infinity()) const {
        const double out = parsed<double>(name, "a number", [](const std::string& v, size_t* used) { return std::stod(v, used); });
        if (out < min) throw UsageError("--" + name + " must be at least " + shortest(min) + ", not " + str(name));
        return out;
    }
    // The flag's value, which must be one of `allowed`.
    std::string choice(const std::string& name, const std::vector<std::string>& allowed) const {
        const std::string v = str(name);
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
            throw UsageError("--" + name + " is " + one_of(allowed) + ", not \"" + v + "\"");
        return v;
    }
    std::string usage() const {
        std::string u = "usage: ddpmkit " + command_ + " [flags]\n\n" + summary_ + "\n\nflags:\n";
        for (const Spec& s : specs_) {
            std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
            left.resize(std::max<size_t>(left.size() + 2, 28), ' ');
            u += left + s.help + (s.default_value.empty() ? "" : " (default " + s.default_value + ")") + "\n";
        }
        return u + "  --help                    this text\n  --version                 the version of ddpmkit\n";
    }

private:
    // The flag's value read whole by parse(value, &used): "12abc", "" and "inf" are refused.
    template <class T, class Parse>
    T parsed(const std::string& name, const char* kind, Parse parse) const {
        const std::string v = str(name);
        size_t used = 0;
        T out{};
        try {
            out = parse(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (v.empty() || used != v.size() || !std::isfinite(static_cast<double>(out)))
            throw UsageError("--" + name + " takes " + kind + ", not \"" + v + "\"");
        return out;
    }
    const Spec* find(const std::string& name) const {
        for (const Spec& s : specs_)
            if (s.name == name) return &s;
        return nullptr;
    }
    std::string command_, summary_;
    std::vector<Spec> specs_;
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> given_, switches_;
};

// The flags of a command: its own, then groups shared with other commands.
inline Flags::Specs concat(Flags::Specs specs, const std::vector<Flags::Specs>& groups) {
    for (const Flags::Specs& g : groups) specs.insert(specs.end(), g.begin(), g.end());
    return specs;
}

}  // namespace cli
