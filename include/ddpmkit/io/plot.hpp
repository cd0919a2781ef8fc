// ddpmkit — charts as pictures: lines, points, arrows (a vector field) and histograms on shared
// axes, with ticks, axis labels and a legend; a loss curve (plot_line_chart) is one use. Drawn
// with ddpmkit's own bitmap font and anti-aliased rasterizer into a Picture (io/image.hpp writes
// it as PNG), so no plotting library is needed.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/io/image.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace plot_detail {

using Rgb = std::array<uint8_t, 3>;

// A bitmap font for ASCII 32..126, drawn for ddpmkit: 5 columns (bit 4 is the leftmost),
// 7 rows down to the baseline and 2 more for the descenders of g, j, p, q, y.
// clang-format off
inline constexpr uint8_t kFont5x9[95][9] = {
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x04,0x04,0x04,0x04,0x04,0x00,0x04,0x00,0x00},  // space !
    {0x0A,0x0A,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x0A,0x0A,0x1F,0x0A,0x1F,0x0A,0x0A,0x00,0x00},  // " #
    {0x04,0x0F,0x14,0x0E,0x05,0x1E,0x04,0x00,0x00}, {0x18,0x19,0x02,0x04,0x08,0x13,0x03,0x00,0x00},  // $ %
    {0x0C,0x12,0x14,0x08,0x15,0x12,0x0D,0x00,0x00}, {0x04,0x04,0x00,0x00,0x00,0x00,0x00,0x00,0x00},  // & '
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02,0x00,0x00}, {0x08,0x04,0x02,0x02,0x02,0x04,0x08,0x00,0x00},  // ( )
    {0x00,0x04,0x15,0x0E,0x15,0x04,0x00,0x00,0x00}, {0x00,0x04,0x04,0x1F,0x04,0x04,0x00,0x00,0x00},  // * +
    {0x00,0x00,0x00,0x00,0x0C,0x04,0x08,0x00,0x00}, {0x00,0x00,0x00,0x1F,0x00,0x00,0x00,0x00,0x00},  // , -
    {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C,0x00,0x00}, {0x00,0x01,0x02,0x04,0x08,0x10,0x00,0x00,0x00},  // . /
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E,0x00,0x00}, {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E,0x00,0x00},  // 0 1
    {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F,0x00,0x00}, {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E,0x00,0x00},  // 2 3
    {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02,0x00,0x00}, {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E,0x00,0x00},  // 4 5
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E,0x00,0x00}, {0x1F,0x01,0x02,0x04,0x08,0x08,0x08,0x00,0x00},  // 6 7
    {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E,0x00,0x00}, {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C,0x00,0x00},  // 8 9
    {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00,0x00,0x00}, {0x00,0x0C,0x0C,0x00,0x0C,0x04,0x08,0x00,0x00},  // : ;
    {0x02,0x04,0x08,0x10,0x08,0x04,0x02,0x00,0x00}, {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00,0x00,0x00},  // < =
    {0x08,0x04,0x02,0x01,0x02,0x04,0x08,0x00,0x00}, {0x0E,0x11,0x01,0x02,0x04,0x00,0x04,0x00,0x00},  // > ?
    {0x0E,0x11,0x01,0x0D,0x15,0x15,0x0E,0x00,0x00}, {0x0E,0x11,0x11,0x1F,0x11,0x11,0x11,0x00,0x00},  // @ A
    {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E,0x00,0x00}, {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E,0x00,0x00},  // B C
    {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C,0x00,0x00}, {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F,0x00,0x00},  // D E
    {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10,0x00,0x00}, {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F,0x00,0x00},  // F G
    {0x11,0x11,0x11,0x1F,0x11,0x11,0x11,0x00,0x00}, {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E,0x00,0x00},  // H I
    {0x07,0x02,0x02,0x02,0x02,0x12,0x0C,0x00,0x00}, {0x11,0x12,0x14,0x18,0x14,0x12,0x11,0x00,0x00},  // J K
    {0x10,0x10,0x10,0x10,0x10,0x10,0x1F,0x00,0x00}, {0x11,0x1B,0x15,0x15,0x11,0x11,0x11,0x00,0x00},  // L M
    {0x11,0x11,0x19,0x15,0x13,0x11,0x11,0x00,0x00}, {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E,0x00,0x00},  // N O
    {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10,0x00,0x00}, {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D,0x00,0x00},  // P Q
    {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11,0x00,0x00}, {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E,0x00,0x00},  // R S
    {0x1F,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, {0x11,0x11,0x11,0x11,0x11,0x11,0x0E,0x00,0x00},  // T U
    {0x11,0x11,0x11,0x11,0x11,0x0A,0x04,0x00,0x00}, {0x11,0x11,0x11,0x15,0x15,0x15,0x0A,0x00,0x00},  // V W
    {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11,0x00,0x00}, {0x11,0x11,0x0A,0x04,0x04,0x04,0x04,0x00,0x00},  // X Y
    {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F,0x00,0x00}, {0x0E,0x08,0x08,0x08,0x08,0x08,0x0E,0x00,0x00},  // Z [
    {0x00,0x10,0x08,0x04,0x02,0x01,0x00,0x00,0x00}, {0x0E,0x02,0x02,0x02,0x02,0x02,0x0E,0x00,0x00},  // backslash ]
    {0x04,0x0A,0x11,0x00,0x00,0x00,0x00,0x00,0x00}, {0x00,0x00,0x00,0x00,0x00,0x00,0x1F,0x00,0x00},  // ^ _
    {0x08,0x04,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F,0x00,0x00},  // ` a
    {0x10,0x10,0x16,0x19,0x11,0x11,0x1E,0x00,0x00}, {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E,0x00,0x00},  // b c
    {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F,0x00,0x00}, {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E,0x00,0x00},  // d e
    {0x06,0x09,0x08,0x1C,0x08,0x08,0x08,0x00,0x00}, {0x00,0x00,0x0F,0x11,0x11,0x11,0x0F,0x01,0x0E},  // f g
    {0x10,0x10,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E,0x00,0x00},  // h i
    {0x02,0x00,0x06,0x02,0x02,0x02,0x02,0x12,0x0C}, {0x10,0x10,0x12,0x14,0x18,0x14,0x12,0x00,0x00},  // j k
    {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E,0x00,0x00}, {0x00,0x00,0x1A,0x15,0x15,0x11,0x11,0x00,0x00},  // l m
    {0x00,0x00,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E,0x00,0x00},  // n o
    {0x00,0x00,0x1E,0x11,0x11,0x11,0x1E,0x10,0x10}, {0x00,0x00,0x0F,0x11,0x11,0x11,0x0F,0x01,0x01},  // p q
    {0x00,0x00,0x16,0x19,0x10,0x10,0x10,0x00,0x00}, {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E,0x00,0x00},  // r s
    {0x08,0x08,0x1C,0x08,0x08,0x09,0x06,0x00,0x00}, {0x00,0x00,0x11,0x11,0x11,0x13,0x0D,0x00,0x00},  // t u
    {0x00,0x00,0x11,0x11,0x11,0x0A,0x04,0x00,0x00}, {0x00,0x00,0x11,0x11,0x15,0x15,0x0A,0x00,0x00},  // v w
    {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11,0x00,0x00}, {0x00,0x00,0x11,0x11,0x11,0x11,0x0F,0x01,0x0E},  // x y
    {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F,0x00,0x00}, {0x02,0x04,0x04,0x08,0x04,0x04,0x02,0x00,0x00},  // z {
    {0x04,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, {0x08,0x04,0x04,0x02,0x04,0x04,0x08,0x00,0x00},  // | }
    {0x00,0x00,0x08,0x15,0x02,0x00,0x00,0x00,0x00},  // ~
};
// clang-format on

inline constexpr int kGlyphAdvance = 6;  // 5 columns of ink and 1 of space

inline int text_width(const std::string& s, int scale) {
    return s.empty() ? 0 : (static_cast<int>(s.size()) * kGlyphAdvance - 1) * scale;
}

inline void fill_rect(Picture& p, int x0, int y0, int x1, int y1, Rgb color) {  // [x0, x1) x [y0, y1), clipped
    for (int y = std::max(0, y0); y < std::min(p.height, y1); ++y)
        for (int x = std::max(0, x0); x < std::min(p.width, x1); ++x)
            for (int c = 0; c < 3; ++c) p.at(x, y, c) = color[static_cast<size_t>(c)];
}

// Text with its top-left corner at (x, y); characters outside ASCII 32..126 draw as '?'.
inline void draw_text(Picture& p, int x, int y, const std::string& s, int scale, Rgb color) {
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char ch = static_cast<unsigned char>(s[i]);
        const uint8_t* glyph = kFont5x9[(ch >= 32 && ch < 127 ? ch : '?') - 32];
        const int gx = x + static_cast<int>(i) * kGlyphAdvance * scale;
        for (int row = 0; row < 9; ++row)
            for (int col = 0; col < 5; ++col)
                if (glyph[row] & (0x10 >> col))
                    fill_rect(p, gx + col * scale, y + row * scale, gx + (col + 1) * scale, y + (row + 1) * scale,
                              color);
    }
}

// Anti-aliased polyline of the given width, clipped to [left, right) x [top, bottom).
// A non-finite point breaks the line. Coverage is the largest over all segments, so joints
// are not drawn twice.
inline void stroke_polyline(Picture& p, const std::vector<double>& xs, const std::vector<double>& ys, double width,
                            Rgb color, int left, int top, int right, int bottom) {
    const int w = right - left, h = bottom - top;
    std::vector<float> coverage(static_cast<size_t>(w) * h, 0.0f);
    const double reach = width / 2 + 0.5;  // pixels farther than this from the centre line get no ink
    auto segment = [&](double x0, double y0, double x1, double y1) {
        const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
        const int px0 = std::max(left, static_cast<int>(std::floor(std::min(x0, x1) - reach)));
        const int px1 = std::min(right - 1, static_cast<int>(std::ceil(std::max(x0, x1) + reach)));
        const int py0 = std::max(top, static_cast<int>(std::floor(std::min(y0, y1) - reach)));
        const int py1 = std::min(bottom - 1, static_cast<int>(std::ceil(std::max(y0, y1) + reach)));
        for (int py = py0; py <= py1; ++py)
            for (int px = px0; px <= px1; ++px) {
                const double cx = px + 0.5 - x0, cy = py + 0.5 - y0;  // the pixel centre, from the start point
                const double t = len2 > 0 ? std::min(1.0, std::max(0.0, (cx * dx + cy * dy) / len2)) : 0.0;
                const double ex = cx - t * dx, ey = cy - t * dy, distance = std::sqrt(ex * ex + ey * ey);
                const float a = static_cast<float>(std::min(1.0, std::max(0.0, reach - distance)));
                float& cell = coverage[static_cast<size_t>(py - top) * w + (px - left)];
                cell = std::max(cell, a);
            }
    };
    for (size_t i = 0; i < xs.size(); ++i) {
        if (!std::isfinite(xs[i]) || !std::isfinite(ys[i])) continue;
        const bool has_next = i + 1 < xs.size() && std::isfinite(xs[i + 1]) && std::isfinite(ys[i + 1]);
        const bool has_prev = i > 0 && std::isfinite(xs[i - 1]) && std::isfinite(ys[i - 1]);
        if (has_next) segment(xs[i], ys[i], xs[i + 1], ys[i + 1]);
        else if (!has_prev) segment(xs[i], ys[i], xs[i], ys[i]);  // an isolated point: a dot
    }
    for (int y = top; y < bottom; ++y)
        for (int x = left; x < right; ++x) {
            const float a = coverage[static_cast<size_t>(y - top) * w + (x - left)];
            if (a <= 0) continue;
            for (int c = 0; c < 3; ++c) {
                uint8_t& v = p.at(x, y, c);
                v = static_cast<uint8_t>(std::lround(v + (color[static_cast<size_t>(c)] - v) * a));
            }
        }
}

// A tick spacing of 1, 2 or 5 x 10^k giving about `target` intervals over range.
inline double nice_step(double range, int target) {
    const double raw = range / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude;
}

// value with `decimals` digits after the point; very large or small magnitudes as 1e+07.
inline std::string format_tick(double value, int decimals) {
    char buf[32];
    const double a = std::fabs(value);
    if (a != 0 && (a >= 1e7 || a < 1e-5)) std::snprintf(buf, sizeof buf, "%.3g", value);
    else std::snprintf(buf, sizeof buf, "%.*f", std::max(0, decimals), value);
    std::string s = buf;
    if (s.find_first_not_of("-0.") == std::string::npos) s = "0";  // never "-0.00"
    return s;
}

struct Tick {
    double value;  // in axis units (log10 of the value on a log axis)
    std::string label;
};

inline std::vector<Tick> linear_ticks(double lo, double hi, int target) {
    const double step = nice_step(hi - lo, target);
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::vector<Tick> ticks;
    for (double k = std::ceil(lo / step); k <= std::floor(hi / step); ++k)
        ticks.push_back({k * step, format_tick(k * step, decimals)});
    return ticks;
}

// Ticks of a log axis spanning [10^lo, 10^hi]: the powers of ten, with 2x and 5x when
// less than two decades are in view, and linear ticks when even those give fewer than two.
inline std::vector<Tick> log_ticks(double lo, double hi) {
    auto label = [](double v) {
        const int decimals = static_cast<int>(std::max(0.0, -std::floor(std::log10(v) + 1e-9)));
        return format_tick(v, decimals);
    };
    std::vector<Tick> ticks;
    const int first = static_cast<int>(std::floor(lo)), last = static_cast<int>(std::ceil(hi));
    const bool with_minor = hi - lo < 2;
    for (int e = first; e <= last; ++e)
        for (double m : {1.0, 2.0, 5.0}) {
            if (m != 1.0 && !with_minor) continue;
            const double v = m * std::pow(10.0, e), position = std::log10(v);
            if (position >= lo - 1e-12 && position <= hi + 1e-12) ticks.push_back({position, label(v)});
        }
    if (ticks.size() >= 2) return ticks;
    ticks.clear();
    for (const Tick& t : linear_ticks(std::pow(10.0, lo), std::pow(10.0, hi), 4))
        if (t.value > 0) ticks.push_back({std::log10(t.value), t.label});
    return ticks;
}

// Bias-corrected exponential moving average (as TensorBoard smooths scalars); non-finite
// values are skipped and stay non-finite.
inline std::vector<double> smooth(const std::vector<double>& v, double weight) {
    std::vector<double> out(v.size());
    double average = 0, correction = 1;
    for (size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i])) {
            out[i] = v[i];
            continue;
        }
        average = weight * average + (1 - weight) * v[i];
        correction *= weight;
        out[i] = average / (1 - correction);
    }
    return out;
}

// Blends a filled disc of radius r (anti-aliased edge) at (cx, cy), clipped to [left, right) x [top, bottom).
inline void fill_disc(Picture& p, double cx, double cy, double r, Rgb color, int left, int top, int right, int bottom) {
    for (int y = std::max(top, static_cast<int>(std::floor(cy - r - 1))); y < std::min(bottom, static_cast<int>(std::ceil(cy + r + 1))); ++y)
        for (int x = std::max(left, static_cast<int>(std::floor(cx - r - 1))); x < std::min(right, static_cast<int>(std::ceil(cx + r + 1))); ++x) {
            const double a = std::min(1.0, std::max(0.0, r + 0.5 - std::hypot(x + 0.5 - cx, y + 0.5 - cy)));
            for (int c = 0; c < 3 && a > 0; ++c) {
                uint8_t& v = p.at(x, y, c);
                v = static_cast<uint8_t>(std::lround(v + (color[static_cast<size_t>(c)] - v) * a));
            }
        }
}

// Blends color over [x0, x1) x [y0, y1) with opacity a, clipped.
inline void blend_rect(Picture& p, int x0, int y0, int x1, int y1, Rgb color, double a) {
    for (int y = std::max(0, y0); y < std::min(p.height, y1); ++y)
        for (int x = std::max(0, x0); x < std::min(p.width, x1); ++x)
            for (int c = 0; c < 3; ++c) {
                uint8_t& v = p.at(x, y, c);
                v = static_cast<uint8_t>(std::lround(v + (color[static_cast<size_t>(c)] - v) * a));
            }
}

// The colours of the series in order (Tableau's 10, which stay apart for most colour vision).
inline constexpr std::array<Rgb, 8> kPalette = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                                 {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}}};

}  // namespace plot_detail

struct PlotOptions {
    std::string title, x_label, y_label;
    bool log_y = false;                                         // logarithmic y axis; values <= 0 are left out
    double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;  // the axes' ranges; NaN: from the data
    int width = 800, height = 480;
};

// A chart built up layer by layer, drawn in the order added:
//   Plot(options).line(t, abar, "linear").line(t, abar2, "cosine").render()
// Series without a colour take the next of the palette; labelled ones appear in the legend.
// Non-finite values (and values <= 0 on a log axis) are left out; on a line they break it.
class Plot {
public:
    using Rgb = plot_detail::Rgb;

    explicit Plot(PlotOptions options = {}) : o_(std::move(options)) {
        if (o_.width < 200 || o_.height < 150 || o_.width > 8192 || o_.height > 8192)
            throw std::invalid_argument("Plot: size " + std::to_string(o_.width) + "x" + std::to_string(o_.height) +
                                        " is outside 200x150 .. 8192x8192");
    }

    // y against x, joined by a line `width` pixels wide.
    Plot& line(std::vector<double> x, std::vector<double> y, std::string label = "", double width = 1.6, std::optional<Rgb> color = {}) {
        check_lengths("Plot::line", x, y);
        return add({Kind::Line, std::move(x), std::move(y), {}, {}, std::move(label), width, color});
    }
    // Points (a scatter plot), discs of `radius` pixels.
    Plot& points(std::vector<double> x, std::vector<double> y, std::string label = "", double radius = 2.0,
                 std::optional<Rgb> color = {}) {
        check_lengths("Plot::points", x, y);
        return add({Kind::Points, std::move(x), std::move(y), {}, {}, std::move(label), radius, color});
    }
    // Arrows from (x, y) to (x + dx, y + dy), in the axes' units: a vector field.
    Plot& arrows(std::vector<double> x, std::vector<double> y, std::vector<double> dx, std::vector<double> dy, std::string label = "",
                 std::optional<Rgb> color = {}) {
        check_lengths("Plot::arrows", x, y);
        check_lengths("Plot::arrows", x, dx);
        check_lengths("Plot::arrows", x, dy);
        return add({Kind::Arrows, std::move(x), std::move(y), std::move(dx), std::move(dy), std::move(label), 1.2, color});
    }
    // A histogram of the finite values in `bins` equal bins over their range (or over the x
    // range set in the options), as a density: the bars' total area is 1.
    Plot& histogram(const std::vector<double>& values, int bins, std::string label = "", std::optional<Rgb> color = {}) {
        if (bins < 1) throw std::invalid_argument("Plot::histogram: " + std::to_string(bins) + " bins");
        double lo = o_.x_min, hi = o_.x_max;
        int64_t n = 0;
        for (double v : values)
            if (std::isfinite(v)) {
                ++n;
                if (std::isnan(o_.x_min)) lo = std::isnan(lo) ? v : std::min(lo, v);
                if (std::isnan(o_.x_max)) hi = std::isnan(hi) ? v : std::max(hi, v);
            }
        if (n == 0) throw std::invalid_argument("Plot::histogram: no finite values");
        if (!(hi > lo)) lo -= 0.5, hi += 0.5;
        std::vector<double> edges(static_cast<size_t>(bins) + 1), density(static_cast<size_t>(bins), 0.0);
        const double width = (hi - lo) / bins;
        for (int i = 0; i <= bins; ++i) edges[static_cast<size_t>(i)] = lo + i * width;
        for (double v : values)
            if (std::isfinite(v) && v >= lo && v <= hi)
                density[static_cast<size_t>(std::min(bins - 1, static_cast<int>((v - lo) / width)))] += 1.0 / (double(n) * width);
        return add({Kind::Bars, std::move(edges), std::move(density), {}, {}, std::move(label), 1.2, color});
    }

    // Where the data land: the axes' ranges (y in axis units, log10 y on a log axis), their
    // ticks, and the plot area [left, right) x [top, bottom) in pixels.
    struct Frame {
        double x_lo, x_hi, y_lo, y_hi;
        bool log_y, has_data;
        std::vector<plot_detail::Tick> x_ticks, y_ticks;
        int left, right, top, bottom;
        double to_axis(double y) const { return !log_y ? y : y > 0 ? std::log10(y) : std::nan(""); }
        double px(double x) const { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); }
        double py(double y) const { return bottom - (to_axis(y) - y_lo) / (y_hi - y_lo) * (bottom - top); }
    };
    Frame frame() const;
    Picture render() const;

    static constexpr double kBarOpacity = 0.25;  // of a histogram's fill

private:
    enum class Kind { Line, Points, Arrows, Bars };
    struct Layer {
        Kind kind;
        std::vector<double> x, y, dx, dy;  // Bars: x the bin edges, y the densities
        std::string label;
        double size;  // line width or point radius, in pixels
        std::optional<Rgb> color;
    };

    static void check_lengths(const char* op, const std::vector<double>& x, const std::vector<double>& y) {
        if (x.size() != y.size())
            throw std::invalid_argument(std::string(op) + ": " + std::to_string(x.size()) + " x values but " + std::to_string(y.size()) +
                                        " y values");
    }
    Plot& add(Layer layer) {
        if (!layer.color) layer.color = plot_detail::kPalette[auto_colors_++ % plot_detail::kPalette.size()];
        layers_.push_back(std::move(layer));
        return *this;
    }

    PlotOptions o_;
    std::vector<Layer> layers_;
    size_t auto_colors_ = 0;
};

inline Plot::Frame Plot::frame() const {
    namespace d = plot_detail;
    Frame f;
    f.log_y = o_.log_y;
    // The ranges: what the layers cover, 5 % more in y, unless the options fix them.
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    auto cover = [&](double x, double y) {
        const double ay = f.to_axis(y);
        if (!std::isfinite(x) || !std::isfinite(ay)) return;
        x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x), y_lo = std::min(y_lo, ay), y_hi = std::max(y_hi, ay);
    };
    for (const Layer& l : layers_)
        for (size_t i = 0; i < l.x.size(); ++i) {
            if (l.kind == Kind::Bars) {
                if (i + 1 < l.x.size()) cover(l.x[i], l.y[i]), cover(l.x[i + 1], o_.log_y ? l.y[i] : 0.0);
                continue;
            }
            cover(l.x[i], l.y[i]);
            if (l.kind == Kind::Arrows) cover(l.x[i] + l.dx[i], l.y[i] + l.dy[i]);
        }
    f.has_data = x_lo <= x_hi;
    if (!f.has_data) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
    if (x_hi - x_lo <= 0) x_lo -= 0.5, x_hi += 0.5;
    if (y_hi - y_lo <= 0) {
        const double pad = o_.log_y ? 0.1 : std::max(std::fabs(y_lo) * 0.1, 1e-3);
        y_lo -= pad, y_hi += pad;
    }
    const double margin = 0.05 * (y_hi - y_lo);  // the data do not touch the frame
    f.x_lo = std::isnan(o_.x_min) ? x_lo : o_.x_min;
    f.x_hi = std::isnan(o_.x_max) ? x_hi : o_.x_max;
    f.y_lo = std::isnan(o_.y_min) ? y_lo - margin : f.to_axis(o_.y_min);
    f.y_hi = std::isnan(o_.y_max) ? y_hi + margin : f.to_axis(o_.y_max);
    if (!(f.x_hi > f.x_lo) || !(f.y_hi > f.y_lo))
        throw std::invalid_argument("Plot: the axes' ranges are empty (x_min >= x_max, y_min >= y_max, or <= 0 on a log axis)");

    f.x_ticks = d::linear_ticks(f.x_lo, f.x_hi, std::max(2, o_.width / 110));
    f.y_ticks = o_.log_y ? d::log_ticks(f.y_lo, f.y_hi) : d::linear_ticks(f.y_lo, f.y_hi, std::max(2, o_.height / 70));
    int label_width = 0;
    for (const d::Tick& t : f.y_ticks) label_width = std::max(label_width, d::text_width(t.label, 1));
    f.left = std::max(40, label_width + 14), f.right = o_.width - 24;
    f.top = (o_.title.empty() ? 12 : 44) + (o_.y_label.empty() ? 0 : 14);
    f.bottom = o_.height - (o_.x_label.empty() ? 26 : 40);
    return f;
}

inline Picture Plot::render() const {
    namespace d = plot_detail;
    const Rgb ink{40, 40, 40}, grid{228, 228, 228};
    const Frame f = frame();
    const int left = f.left, right = f.right, top = f.top, bottom = f.bottom;
    auto px = [&](double x) { return f.px(x); };
    auto py = [&](double y) { return f.py(y); };

    Picture p(o_.width, o_.height, 3, 255);
    for (const d::Tick& t : f.y_ticks) {
        const int yy = static_cast<int>(std::lround(bottom - (t.value - f.y_lo) / (f.y_hi - f.y_lo) * (bottom - top)));
        d::fill_rect(p, left, yy, right, yy + 1, grid);
        d::fill_rect(p, left - 5, yy, left, yy + 1, ink);
        d::draw_text(p, left - 8 - d::text_width(t.label, 1), yy - 3, t.label, 1, ink);
    }
    for (const d::Tick& t : f.x_ticks) {
        const int xx = static_cast<int>(std::lround(px(t.value)));
        d::fill_rect(p, xx, top, xx + 1, bottom, grid);
        d::fill_rect(p, xx, bottom, xx + 1, bottom + 5, ink);
        d::draw_text(p, xx - d::text_width(t.label, 1) / 2, bottom + 9, t.label, 1, ink);
    }

    for (const Layer& l : layers_) {
        const Rgb color = *l.color;
        std::vector<double> sx, sy;  // in pixels; NaN breaks a polyline
        const double gap = std::nan("");
        switch (l.kind) {
            case Kind::Line:
                for (size_t i = 0; i < l.x.size(); ++i) sx.push_back(px(l.x[i])), sy.push_back(py(l.y[i]));
                break;
            case Kind::Points:
                for (size_t i = 0; i < l.x.size(); ++i)
                    if (std::isfinite(px(l.x[i])) && std::isfinite(py(l.y[i])))
                        d::fill_disc(p, px(l.x[i]), py(l.y[i]), l.size, color, left, top, right, bottom);
                break;
            case Kind::Arrows:
                for (size_t i = 0; i < l.x.size(); ++i) {
                    const double x0 = px(l.x[i]), y0 = py(l.y[i]), x1 = px(l.x[i] + l.dx[i]), y1 = py(l.y[i] + l.dy[i]);
                    const double length = std::hypot(x1 - x0, y1 - y0), head = std::min(7.0, 0.4 * length);
                    if (!std::isfinite(length) || length == 0) continue;
                    const double ux = (x1 - x0) / length, uy = (y1 - y0) / length, c = std::cos(0.45), s = std::sin(0.45);
                    sx.insert(sx.end(), {x0, x1, x1 - head * (c * ux - s * uy), gap, x1, x1 - head * (c * ux + s * uy), gap});
                    sy.insert(sy.end(), {y0, y1, y1 - head * (s * ux + c * uy), gap, y1, y1 - head * (-s * ux + c * uy), gap});
                }
                break;
            case Kind::Bars: {
                // Filled bars, light enough to see others through, and their outline as one step line.
                const double base = o_.log_y ? bottom : py(0.0);
                sx.push_back(px(l.x.front())), sy.push_back(base);
                for (size_t i = 0; i + 1 < l.x.size(); ++i) {
                    const double x0 = px(l.x[i]), x1 = px(l.x[i + 1]), y = py(l.y[i]), y_top = std::isfinite(y) ? y : base;
                    d::blend_rect(p, static_cast<int>(std::lround(std::max<double>(x0, left))), static_cast<int>(std::lround(std::max<double>(y_top, top))),
                                  static_cast<int>(std::lround(std::min<double>(x1, right))), static_cast<int>(std::lround(std::min(base, double(bottom)))),
                                  color, kBarOpacity);
                    sx.insert(sx.end(), {x0, x1}), sy.insert(sy.end(), {y_top, y_top});
                }
                sx.push_back(px(l.x.back())), sy.push_back(base);
                break;
            }
        }
        if (!sx.empty()) d::stroke_polyline(p, sx, sy, l.size, color, left, top, right, bottom);
    }
    if (!f.has_data) {
        const std::string note = "no data";
        d::draw_text(p, (left + right - d::text_width(note, 2)) / 2, (top + bottom) / 2 - 7, note, 2, ink);
    }

    // The frame after the data, so that nothing covers it.
    d::fill_rect(p, left - 1, top, left, bottom + 1, ink);
    d::fill_rect(p, left - 1, bottom, right, bottom + 1, ink);
    d::fill_rect(p, right - 1, top, right, bottom, grid);
    d::fill_rect(p, left, top - 1, right, top, grid);
    if (!o_.title.empty()) d::draw_text(p, (o_.width - d::text_width(o_.title, 2)) / 2, 12, o_.title, 2, ink);
    if (!o_.y_label.empty()) d::draw_text(p, left - 1, top - 15, o_.y_label + (o_.log_y ? " (log scale)" : ""), 1, ink);
    if (!o_.x_label.empty()) d::draw_text(p, (left + right - d::text_width(o_.x_label, 1)) / 2, bottom + 24, o_.x_label, 1, ink);

    // The legend, top right inside the plot area: a sample of each labelled layer and its label.
    std::vector<const Layer*> named;
    int text = 0;
    for (const Layer& l : layers_)
        if (!l.label.empty()) named.push_back(&l), text = std::max(text, d::text_width(l.label, 1));
    if (!named.empty()) {
        const int row = 14, w = text + 36, h = static_cast<int>(named.size()) * row + 8, x0 = right - w - 8, y0 = top + 8;
        d::fill_rect(p, x0, y0, x0 + w, y0 + h, Rgb{200, 200, 200});
        d::fill_rect(p, x0 + 1, y0 + 1, x0 + w - 1, y0 + h - 1, Rgb{255, 255, 255});
        for (size_t i = 0; i < named.size(); ++i) {
            const Layer& l = *named[i];
            const int cy = y0 + 4 + static_cast<int>(i) * row + row / 2;
            if (l.kind == Kind::Points) d::fill_disc(p, x0 + 14, cy, std::min(l.size, 4.0), *l.color, 0, 0, o_.width, o_.height);
            else if (l.kind == Kind::Bars) d::blend_rect(p, x0 + 6, cy - 4, x0 + 22, cy + 4, *l.color, 2 * kBarOpacity);
            else d::fill_rect(p, x0 + 6, cy - 1, x0 + 22, cy + 1, *l.color);
            d::draw_text(p, x0 + 28, cy - 4, l.label, 1, ink);
        }
    }
    return p;
}

// ---- loss curves ----

struct ChartOptions {
    std::string title;
    std::string x_label = "step";
    std::string y_label = "loss";
    bool log_y = false;    // logarithmic y axis; values <= 0 are left out
    double smoothing = 0;  // in [0, 1): also draw an exponential moving average of this weight
    int width = 800, height = 480;
};

// A line chart of y against x (a loss curve): the curve, and with options.smoothing its moving
// average (taken on the axis, so of log10 y on a log axis) drawn over it.
inline Picture plot_line_chart(const std::vector<double>& x, const std::vector<double>& y, const ChartOptions& options = {}) {
    if (!(options.smoothing >= 0 && options.smoothing < 1))
        throw std::invalid_argument("plot_line_chart: smoothing " + std::to_string(options.smoothing) + " is not in [0, 1)");
    Plot plot(PlotOptions{options.title, options.x_label, options.y_label, options.log_y, NAN, NAN, NAN, NAN, options.width, options.height});
    const Plot::Rgb curve{25, 90, 180};
    if (options.smoothing == 0) return plot.line(x, y, "", 1.6, curve).render();
    std::vector<double> average = y;
    if (options.log_y)
        for (double& v : average) v = v > 0 ? std::log10(v) : std::nan("");
    average = plot_detail::smooth(average, options.smoothing);
    if (options.log_y)
        for (double& v : average) v = std::pow(10.0, v);
    return plot.line(x, y, "", 1.0, Plot::Rgb{150, 185, 230}).line(x, average, "", 2.0, curve).render();
}

DDPMKIT_END_NAMESPACE
