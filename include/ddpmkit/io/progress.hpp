// ddpmkit — training feedback: a progress line (step/total, named values, it/s, ETA) and a
// CSV log of the same numbers.
//
// On a terminal the line is redrawn in place (carriage return); into a file or a pipe it is
// printed as plain lines, at most one every `interval` seconds, so logs stay readable.
#pragma once

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

enum class ProgressStyle {
    automatic,  // in_place on a terminal, lines otherwise
    in_place,   // one line redrawn with '\r'
    lines,      // newline-terminated lines, rate-limited
};

using NamedValues = std::vector<std::pair<std::string, double>>;

class ProgressLine {
public:
    using Clock = std::chrono::steady_clock;

    // total: the step at which the run ends; first_step: steps already done (when resuming),
    // so that it/s and ETA count only this run's work. interval: seconds between two plain
    // lines (a terminal line is redrawn up to 10 times a second).
    explicit ProgressLine(int64_t total, int64_t first_step = 0, double interval = 10.0, std::FILE* out = stdout,
                          ProgressStyle style = ProgressStyle::automatic)
        : total_(total), first_step_(first_step), interval_(interval), out_(out), start_(Clock::now()) {
        in_place_ =
            style == ProgressStyle::in_place || (style == ProgressStyle::automatic && ::isatty(::fileno(out)) == 1);
    }
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;
    ~ProgressLine() {
        if (open_line_) std::fputc('\n', out_);  // leave the terminal on a fresh line, even after an exception
    }

    // Reports that `step` steps are done; prints if the rate limit allows, and always at the
    // first report and at step == total.
    void update(int64_t step, const NamedValues& values = {}) {
        const Clock::time_point now = Clock::now();
        const double since_print = std::chrono::duration<double>(now - last_print_).count();
        const bool due = !printed_ || step >= total_ || since_print >= (in_place_ ? 0.1 : interval_);
        if (!due || (printed_ && step == last_step_)) return;  // a step is shown once
        last_step_ = step;
        last_print_ = now;
        printed_ = true;
        const std::string line = format(step, values, std::chrono::duration<double>(now - start_).count());
        if (in_place_) {
            std::string shown = line.substr(0, terminal_width() - 1);  // a wrapped line cannot be redrawn
            const size_t pad = previous_length_ > shown.size() ? previous_length_ - shown.size() : 0;
            previous_length_ = shown.size();
            shown = "\r" + shown + std::string(pad, ' ');  // spaces wipe a longer previous line
            std::fputs(shown.c_str(), out_);
            open_line_ = true;
            if (step >= total_) finish();
        } else {
            std::fputs((line + "\n").c_str(), out_);
        }
        std::fflush(out_);
    }

    // A run bounded by time learns its number of steps as it goes.
    void set_total(int64_t total) { total_ = total; }

    // Ends an in-place line with a newline (called at step == total and by the destructor).
    void finish() {
        if (!open_line_) return;
        std::fputc('\n', out_);
        std::fflush(out_);
        open_line_ = false;
        previous_length_ = 0;
    }

    // "step 1200/50000 (2.4%)  loss 0.03125  grad 1.23  8.41 it/s  ETA 1:36:40"
    std::string format(int64_t step, const NamedValues& values, double elapsed_seconds) const {
        char buf[96];
        std::snprintf(buf, sizeof buf, "step %lld/%lld (%.1f%%)", static_cast<long long>(step),
                      static_cast<long long>(total_), total_ > 0 ? 100.0 * step / total_ : 100.0);
        std::string line = buf;
        for (const auto& kv : values) {
            std::snprintf(buf, sizeof buf, "%.4g", kv.second);
            line += "  " + kv.first + " " + buf;
        }
        const double done = static_cast<double>(step - first_step_);
        if (done > 0 && elapsed_seconds > 0) {
            const double rate = done / elapsed_seconds;
            // Slow steps read better as seconds per step, as tqdm shows them.
            if (rate >= 1) std::snprintf(buf, sizeof buf, "  %.2f it/s", rate);
            else std::snprintf(buf, sizeof buf, "  %.2f s/it", 1 / rate);
            line += buf;
            if (step < total_) line += "  ETA " + format_duration(static_cast<double>(total_ - step) / rate);
            else line += "  took " + format_duration(elapsed_seconds);
        }
        return line;
    }

    // 95 -> "1:35", 5400 -> "1:30:00", 200000 -> "2d 7:33:20".
    static std::string format_duration(double seconds) {
        if (!std::isfinite(seconds) || seconds < 0) return "?";
        const long long s = std::llround(seconds);
        const long long days = s / 86400, hours = s / 3600 % 24, minutes = s / 60 % 60, secs = s % 60;
        char buf[48];
        if (days > 0) std::snprintf(buf, sizeof buf, "%lldd %lld:%02lld:%02lld", days, hours, minutes, secs);
        else if (hours > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", hours, minutes, secs);
        else std::snprintf(buf, sizeof buf, "%lld:%02lld", minutes, secs);
        return buf;
    }

private:
    size_t terminal_width() const {
        winsize ws{};
        if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
        return 200;  // not a terminal after all (in_place forced): keep lines sane
    }

    int64_t total_, first_step_, last_step_ = -1;
    double interval_;
    std::FILE* out_;
    bool in_place_ = false, printed_ = false, open_line_ = false;
    size_t previous_length_ = 0;
    Clock::time_point start_, last_print_;
};

// A CSV log (RFC 4180): a header row of column names, then one row of numbers per call to
// log(), flushed at once so that a crash loses at most the row being written. Numbers have
// 9 significant digits: exact for float values and for integers below 10^9.
class CsvLogger {
public:
    // append = false: creates (or replaces) the file and writes the header.
    // append = true (resuming): continues an existing file whose header row is exactly this
    // one (else std::runtime_error), after dropping a last row cut short by a crash; creates
    // the file if it does not exist.
    CsvLogger(const std::string& path, std::vector<std::string> columns, bool append = false)
        : path_(path), columns_(std::move(columns)), file_(nullptr, &std::fclose) {
        if (columns_.empty()) throw std::invalid_argument("CsvLogger " + path_ + ": no columns");
        std::string header;
        for (size_t i = 0; i < columns_.size(); ++i) header += (i ? "," : "") + quote(columns_[i]);
        header += "\n";
        bool write_header = true;
        if (append) {
            std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path_.c_str(), "rb"), &std::fclose);
            if (in) {
                const std::string text = read_all(in.get());
                if (!text.empty()) {
                    const std::string first_line = text.substr(0, text.find('\n') + 1);
                    if (first_line != header)
                        throw std::runtime_error("CsvLogger " + path_ + ": cannot append, its header is \"" +
                                                 chomp(first_line) + "\" but this run logs \"" + chomp(header) + "\"");
                    write_header = false;
                    // A row cut short by a crash: drop it, so the next row starts on its own line.
                    const size_t keep = text.rfind('\n') + 1;
                    if (keep < text.size() && ::truncate(path_.c_str(), static_cast<off_t>(keep)) != 0)
                        fail("truncate the unfinished last row of");
                }
            } else if (errno != ENOENT) {
                fail("open");
            }
        }
        file_.reset(std::fopen(path_.c_str(), append ? "ab" : "wb"));
        if (!file_) fail(append ? "open" : "create");
        if (write_header) write(header);
    }

    const std::vector<std::string>& columns() const { return columns_; }

    // One row: values[i] goes under columns()[i].
    void log(const std::vector<double>& values) {
        if (values.size() != columns_.size())
            throw std::invalid_argument("CsvLogger " + path_ + ": " + std::to_string(values.size()) + " values for " +
                                        std::to_string(columns_.size()) + " columns");
        std::string row;
        char buf[32];
        for (size_t i = 0; i < values.size(); ++i) {
            std::snprintf(buf, sizeof buf, "%.9g", values[i]);
            row += (i ? "," : "") + std::string(buf);
        }
        write(row + "\n");
    }

private:
    // RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
    static std::string quote(const std::string& field) {
        if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
        std::string q = "\"";
        for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    }
    static std::string chomp(const std::string& s) { return s.substr(0, s.find_last_not_of("\r\n") + 1); }
    static std::string read_all(std::FILE* f) {
        std::string text;
        char buf[1 << 16];
        for (size_t got; (got = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, got);
        return text;
    }
    void write(const std::string& s) {
        if (std::fwrite(s.data(), 1, s.size(), file_.get()) != s.size() || std::fflush(file_.get()) != 0)
            fail("write to");
    }
    [[noreturn]] void fail(const char* step) const {
        const int err = errno;
        throw std::system_error(err, std::generic_category(), std::string("CsvLogger: cannot ") + step + " " + path_);
    }

    std::string path_;
    std::vector<std::string> columns_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
};

DDPMKIT_END_NAMESPACE
