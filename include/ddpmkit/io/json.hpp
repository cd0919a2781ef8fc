// ddpmkit — a small strict JSON parser (RFC 8259) and a string quoter for writing JSON.
//
// Strict means: one value and nothing after it but whitespace, UTF-8 checked, no
// duplicate keys, no comments, no trailing commas, no NaN. Errors give the byte position.
// Integer literals (no sign, fraction or exponent) are kept exactly as uint64_t, so
// sizes and offsets above 2^53 survive; other numbers are doubles. Hostile input is capped:
// nesting depth 256, 1,000,000 values per document, and parse time linear in its length.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <set>
#include <system_error>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace json {

// Thrown for malformed input (position() is the byte offset of the problem) and for
// asking a value for the wrong kind (position() is npos). what() is "JSON: <reason>[ at byte N]".
class Error : public std::runtime_error {
public:
    static constexpr size_t npos = static_cast<size_t>(-1);
    Error(const std::string& reason, size_t position)
        : std::runtime_error("JSON: " + reason + (position == npos ? "" : " at byte " + std::to_string(position))),
          reason_(reason),
          position_(position) {}
    const std::string& reason() const { return reason_; }
    size_t position() const { return position_; }

private:
    std::string reason_;
    size_t position_;
};

class Value;
using Array = std::vector<Value>;
// Members in document order; keys are unique (the parser rejects duplicates).
using Object = std::vector<std::pair<std::string, Value>>;

struct Number {
    double value = 0.0;
    uint64_t integer = 0;  // exact value when integral
    bool integral = false;
};

class Value {
public:
    Value() = default;
    explicit Value(bool b) : v_(b) {}
    explicit Value(Number n) : v_(n) {}
    explicit Value(std::string s) : v_(std::move(s)) {}
    explicit Value(const char* s) : v_(std::string(s)) {}  // else a pointer would pick Value(bool)
    explicit Value(Array a) : v_(std::move(a)) {}
    explicit Value(Object o) : v_(std::move(o)) {}

    bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
    bool is_bool() const { return std::holds_alternative<bool>(v_); }
    bool is_number() const { return std::holds_alternative<Number>(v_); }
    // A literal without sign, fraction or exponent (it fits uint64_t: the parser checks).
    bool is_integer() const { return is_number() && std::get<Number>(v_).integral; }
    bool is_string() const { return std::holds_alternative<std::string>(v_); }
    bool is_array() const { return std::holds_alternative<Array>(v_); }
    bool is_object() const { return std::holds_alternative<Object>(v_); }

    bool as_bool() const { return get<bool>("a boolean"); }
    double as_double() const { return get<Number>("a number").value; }
    uint64_t as_uint() const {
        if (!is_integer()) throw Error("expected a non-negative integer, got " + describe(), Error::npos);
        return std::get<Number>(v_).integer;
    }
    const std::string& as_string() const { return get<std::string>("a string"); }
    const Array& as_array() const { return get<Array>("an array"); }
    const Object& as_object() const { return get<Object>("an object"); }

    // The member named key of an object, or nullptr.
    const Value* find(const std::string& key) const {
        for (const auto& kv : as_object())
            if (kv.first == key) return &kv.second;
        return nullptr;
    }

    // "a string", "an integer", ...: for error messages.
    std::string describe() const {
        static const char* const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
        return is_integer() ? "an integer" : names[v_.index()];  // in the order of the variant
    }

private:
    template <class T>
    const T& get(const char* want) const {
        if (!std::holds_alternative<T>(v_))
            throw Error(std::string("expected ") + want + ", got " + describe(), Error::npos);
        return std::get<T>(v_);
    }

    std::variant<std::nullptr_t, bool, Number, std::string, Array, Object> v_;
};

namespace detail {

// Length of the well-formed UTF-8 sequence at s[i], or 0 (RFC 3629 table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF).
inline size_t utf8_sequence_length(const unsigned char* s, size_t i, size_t n) {
    const unsigned c = s[i];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; ++k)
        if ((s[i + k] & 0xC0) != 0x80) return 0;
    return len;
}

inline void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Parser {
public:
    // Deep enough for any config; shallow enough that recursion cannot exhaust the stack.
    static constexpr int kMaxDepth = 256;
    // Values in one document: a safetensors header holds about 8 per tensor, so this admits
    // 100,000 tensors, while a document of bare numbers cannot make the parser hold gigabytes.
    static constexpr size_t kMaxValues = 1'000'000;

    Parser(const char* data, size_t size) : s_(reinterpret_cast<const unsigned char*>(data)), n_(size) {}

    Value parse_document() {
        Value v = parse_value(0);
        skip_ws();
        if (i_ != n_) fail("unexpected text after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& reason) const { fail_at(reason, i_); }
    [[noreturn]] static void fail_at(const std::string& reason, size_t pos) { throw Error(reason, pos); }

    void skip_ws() {
        while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    void expect(char c) {
        if (i_ >= n_ || s_[i_] != static_cast<unsigned char>(c)) fail(std::string("expected '") + c + "'");
        ++i_;
    }
    void expect_word(const char* w) {
        const size_t start = i_;
        for (; *w; ++w, ++i_)
            if (i_ >= n_ || s_[i_] != static_cast<unsigned char>(*w)) fail_at("invalid literal", start);
    }

    Value parse_value(int depth) {
        skip_ws();
        if (i_ >= n_) fail("unexpected end of input");
        if (++values_ > kMaxValues) fail("more than " + std::to_string(kMaxValues) + " values");
        switch (s_[i_]) {
        case '{': return parse_object(depth + 1);
        case '[': return parse_array(depth + 1);
        case '"': return Value(parse_string());
        case 't': expect_word("true"); return Value(true);
        case 'f': expect_word("false"); return Value(false);
        case 'n': expect_word("null"); return Value();
        default:
            if (s_[i_] == '-' || (s_[i_] >= '0' && s_[i_] <= '9')) return Value(parse_number());
            fail("unexpected character");
        }
    }

    Value parse_object(int depth) {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
        ++i_;  // '{'
        Object members;
        std::set<std::string> seen;
        skip_ws();
        if (i_ < n_ && s_[i_] == '}') {
            ++i_;
            return Value(std::move(members));
        }
        for (;;) {
            skip_ws();
            const size_t key_pos = i_;
            if (i_ >= n_ || s_[i_] != '"') fail("expected a string key");
            std::string key = parse_string();
            if (!seen.insert(key).second) fail_at("duplicate key \"" + key + "\"", key_pos);
            skip_ws();
            expect(':');
            Value v = parse_value(depth);
            members.emplace_back(std::move(key), std::move(v));
            skip_ws();
            if (i_ < n_ && s_[i_] == ',') {
                ++i_;
                continue;
            }
            expect('}');
            return Value(std::move(members));
        }
    }

    Value parse_array(int depth) {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
        ++i_;  // '['
        Array items;
        skip_ws();
        if (i_ < n_ && s_[i_] == ']') {
            ++i_;
            return Value(std::move(items));
        }
        for (;;) {
            items.push_back(parse_value(depth));
            skip_ws();
            if (i_ < n_ && s_[i_] == ',') {
                ++i_;
                continue;
            }
            expect(']');
            return Value(std::move(items));
        }
    }

    uint32_t parse_hex4() {
        if (n_ - i_ < 4) fail("truncated \\u escape");
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k, ++i_) {
            const unsigned c = s_[i_];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else fail("invalid hex digit in \\u escape");
        }
        return v;
    }

    std::string parse_string() {
        ++i_;  // '"'
        std::string out;
        for (;;) {
            if (i_ >= n_) fail("unterminated string");
            const unsigned char c = s_[i_];
            if (c == '"') {
                ++i_;
                return out;
            }
            if (c < 0x20) fail("control character in string (must be escaped)");  // RFC 8259 §7
            if (c != '\\') {
                const size_t len = utf8_sequence_length(s_, i_, n_);
                if (len == 0) fail("invalid UTF-8");
                out.append(reinterpret_cast<const char*>(s_ + i_), len);
                i_ += len;
                continue;
            }
            const size_t esc = i_++;
            if (i_ >= n_) fail("unterminated string");
            switch (s_[i_++]) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                uint32_t cp = parse_hex4();
                // Characters above U+FFFF come as a UTF-16 surrogate pair (RFC 8259 §7).
                if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at("unpaired low surrogate in \\u escape", esc);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (n_ - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u')
                        fail_at("unpaired high surrogate in \\u escape", esc);
                    i_ += 2;
                    const uint32_t lo = parse_hex4();
                    if (lo < 0xDC00 || lo > 0xDFFF) fail_at("unpaired high surrogate in \\u escape", esc);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                append_utf8(out, cp);
                break;
            }
            default: fail_at("invalid escape", esc);
            }
        }
    }

    Number parse_number() {
        // RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        const size_t start = i_;
        auto digits = [&] {
            const size_t from = i_;
            while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
            if (i_ == from) fail("expected a digit");
        };
        const bool negative = s_[i_] == '-';
        if (negative) ++i_;
        const size_t mantissa = i_;
        size_t dot = 0, exponent = 0;  // positions of '.' and of the exponent's first digit; 0: none
        if (i_ < n_ && s_[i_] == '0') ++i_;
        else digits();
        const size_t int_end = i_;
        bool integral = !negative;
        if (i_ < n_ && s_[i_] == '.') {
            dot = i_++;
            digits();
            integral = false;
        }
        if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            exponent = i_;
            digits();
            integral = false;
        }
        Number num;
        const char* first = reinterpret_cast<const char*>(s_ + start);
        const char* last = reinterpret_cast<const char*>(s_ + i_);
        auto text = [&] { return std::string(first, last); };  // for messages only
        if (integral) {
            for (size_t k = start; k < i_; ++k) {
                const uint64_t d = s_[k] - '0';
                if (num.integer > (UINT64_MAX - d) / 10) fail_at("integer " + text() + " does not fit in 64 bits", start);
                num.integer = num.integer * 10 + d;
            }
            num.integral = true;
            num.value = static_cast<double>(num.integer);
            return num;
        }
        // from_chars: no locale (a user's locale must not turn '.' into ','), no copy, linear
        // time. The grammar was checked above, so it reads every character.
        const std::from_chars_result r = std::from_chars(first, last, num.value);
        if (r.ec == std::errc::result_out_of_range) {
            // Too small for a double rounds to zero, as strtod does; too large is an error.
            // The decimal exponent of the first significant digit tells which.
            int64_t e = 0;
            for (size_t k = exponent; exponent && k < i_; ++k) e = std::min<int64_t>(e * 10 + (s_[k] - '0'), 1'000'000'000);
            if (exponent && s_[exponent - 1] == '-') e = -e;
            size_t k = mantissa;
            while (k < i_ && (s_[k] == '0' || s_[k] == '.')) ++k;  // a zero mantissa is never out of range
            e += k < int_end ? static_cast<int64_t>(int_end - k) - 1 : -static_cast<int64_t>(k - dot);
            if (e >= 0) fail_at("number " + text() + " is out of range", start);
            num.value = negative ? -0.0 : 0.0;
            return num;
        }
        if (r.ec != std::errc() || r.ptr != last) fail_at("number " + text() + " is not readable", start);
        return num;
    }

    const unsigned char* s_;
    size_t n_;
    size_t i_ = 0;
    size_t values_ = 0;
};

}  // namespace detail

inline Value parse(const char* data, size_t size) { return detail::Parser(data, size).parse_document(); }
inline Value parse(const std::string& text) { return parse(text.data(), text.size()); }

// s as a JSON string literal, quotes included. Throws Error on invalid UTF-8, which no
// JSON document may contain.
inline std::string quote(const std::string& s) {
    std::string out = "\"";
    const auto* u = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20) {  // RFC 8259 §7: control characters must be escaped
            static const char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            const size_t len = detail::utf8_sequence_length(u, i, s.size());
            if (len == 0) throw Error("invalid UTF-8 in the string to quote", i);
            out.append(s, i, len);
            i += len;
            continue;
        }
        ++i;
    }
    return out + "\"";
}

}  // namespace json

DDPMKIT_END_NAMESPACE
