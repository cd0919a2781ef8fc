// 01 — tensors and gradients: the machinery every later example stands on.
//
// First one small graph by hand, L = (a b + c)^2 with numbers: the forward pass keeps every
// intermediate value, and the backward pass walks the graph from L back to the inputs,
// multiplying local derivatives (the chain rule); autograd does the same walk. Its graph is
// written as Graphviz DOT to 01_graph.dot (render it: dot -Tpng 01_graph.dot -o graph.png).
// Then the same with tensors: a two-layer network f(x) = W2 tanh(W1 x + b1) + b2 learns y = sin(x) on [-pi, pi] by
// gradient descent on the mean squared error L = mean((f(x) - y)^2). Reverse-mode
// autograd gives dL/dW for every weight in one backward pass; gradcheck first shows that
// those gradients equal central finite differences (dL/dw ~ (L(w+e) - L(w-e)) / 2e).
// Writes 01_loss.png (the loss against the step), 01_fit.png (sin and the network before
// and after training) and 01_network.dot (the network's graph).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

// Writes text to path, or says which file could not be written.
bool write_text(const char* path, const std::string& text) {
    std::FILE* f = std::fopen(path, "w");
    const bool ok = f && std::fputs(text.c_str(), f) >= 0;
    if (f) std::fclose(f);
    if (!ok) std::fprintf(stderr, "cannot write %s\n", path);
    return ok;
}

int main() {
    // 0. One graph by hand: d = a b, e = d + c, L = e^2.
    const double a = 2, b = -3, c = 10;
    const double d = a * b, e = d + c, L = e * e;
    const double dL_de = 2 * e;          // d(e^2)/de
    const double dL_dd = dL_de * 1;      // e = d + c: de/dd = 1
    const double dL_dc = dL_de * 1;      //            de/dc = 1
    const double dL_da = dL_dd * b;      // d = a b:   dd/da = b
    const double dL_db = dL_dd * a;      //            dd/db = a
    std::printf("by hand:  d = a b = %g, e = d + c = %g, L = e^2 = %g\n", d, e, L);
    std::printf("          dL/de = 2e = %g, dL/dd = %g, dL/dc = %g, dL/da = dL/dd b = %g, dL/db = dL/dd a = %g\n", dL_de, dL_dd,
                dL_dc, dL_da, dL_db);
    const VarD va(TensorD({1}, {a}), true), vb(TensorD({1}, {b}), true), vc(TensorD({1}, {c}), true);
    const VarD vd = va * vb, ve = vd + vc, vL = ve * ve;
    vL.backward();
    std::printf("autograd: L = %g, dL/da = %g, dL/db = %g, dL/dc = %g\n", vL.item(), va.grad().item(), vb.grad().item(),
                vc.grad().item());
    const bool by_hand_ok = va.grad().item() == dL_da && vb.grad().item() == dL_db && vc.grad().item() == dL_dc;
    if (!write_text("01_graph.dot", graph_dot(vL, {{"a", va}, {"b", vb}, {"c", vc}, {"d", vd}, {"e", ve}, {"L", vL}}))) return 1;
    std::printf("wrote 01_graph.dot (dot -Tpng 01_graph.dot -o graph.png draws it)\n\n");

    const int64_t N = 256, H = 32;  // points, hidden units
    const double pi = 3.14159265358979323846;

    // The data: x on a grid, y = sin(x). Shapes: x, y [N, 1].
    TensorF x({N, 1}), y({N, 1});
    for (int64_t i = 0; i < N; ++i) {
        x(i, 0) = static_cast<float>(-pi + 2 * pi * i / (N - 1));
        y(i, 0) = std::sin(x(i, 0));
    }
    Rng rng(0);
    VarF W1(TensorF::randn({1, H}, rng, 0.0, 1.0), true), b1(TensorF::zeros({H}), true);
    VarF W2(TensorF::randn({H, 1}, rng, 0.0, 1.0 / std::sqrt(double(H))), true), b2(TensorF::zeros({1}), true);
    const VarF X(x), Y(y);
    auto model = [](const auto& in, const auto& w1, const auto& c1, const auto& w2, const auto& c2) {
        return matmul(tanh(matmul(in, w1) + c1), w2) + c2;  // [N,1] x [1,H] -> [N,H] -> [N,1]
    };

    // 1. Backward agrees with finite differences (in double, on a few points).
    const GradcheckResult check = gradcheck(
        [&](const std::vector<VarD>& p) { return mse(model(VarD(x.slice(0, 8).cast<double>()), p[0], p[1], p[2], p[3]),
                                                     VarD(y.slice(0, 8).cast<double>())); },
        {VarD(W1.value().cast<double>(), true), VarD(b1.value().cast<double>(), true),
         VarD(W2.value().cast<double>(), true), VarD(b2.value().cast<double>(), true)});
    std::printf("gradcheck of dL/dW (central differences, eps 1e-6): %s, largest difference %.2e\n",
                check.ok ? "passed" : "FAILED", check.max_abs_error);

    const VarF first_loss = mse(model(X, W1, b1, W2, b2), Y);
    const TensorF before = model(X, W1, b1, W2, b2).value();
    if (!write_text("01_network.dot", graph_dot(first_loss, {{"x", X}, {"y", Y}, {"W1", W1}, {"b1", b1}, {"W2", W2}, {"b2", b2}, {"L", first_loss}})))
        return 1;

    // 2. Gradient descent: w <- w - lr dL/dw.
    const float lr = 0.03f;  // below 2 / (largest curvature of L), or the descent diverges
    std::printf("\n step   loss (mean squared error)\n");
    std::vector<double> steps, losses;
    for (int step = 0; step <= 20000; ++step) {
        for (VarF* p : {&W1, &b1, &W2, &b2}) p->zero_grad();
        const VarF loss = mse(model(X, W1, b1, W2, b2), Y);
        loss.backward();
        if (step % 2500 == 0) std::printf("%5d   %.6f\n", step, static_cast<double>(loss.item()));
        if (step % 50 == 0) steps.push_back(step), losses.push_back(loss.item());
        for (VarF* p : {&W1, &b1, &W2, &b2})
            kernels::axpy(p->numel(), -lr, p->grad().data(), p->value().data());  // the update, outside the graph
    }

    // 3. What it learned.
    NoGradGuard no_grad;
    const TensorF fit = model(X, W1, b1, W2, b2).value();
    std::printf("\n     x    sin(x)   f(x)\n");
    for (int64_t i = 0; i < N; i += N / 8)
        std::printf("%6.2f  %7.4f  %7.4f\n", static_cast<double>(x(i, 0)), static_cast<double>(y(i, 0)),
                    static_cast<double>(fit(i, 0)));

    ChartOptions chart;
    chart.title = "gradient descent on the mean squared error";
    chart.log_y = true;
    write_png("01_loss.png", plot_line_chart(steps, losses, chart));
    PlotOptions o;
    o.title = "y = sin(x) and the network f(x)";
    o.x_label = "x";
    auto column = [](const TensorF& t) { return std::vector<double>(t.data(), t.data() + t.numel()); };
    write_png("01_fit.png", Plot(o)
                                .line(column(x), column(y), "sin(x)", 3.0)
                                .line(column(x), column(before), "f(x) before training")
                                .line(column(x), column(fit), "f(x) after")
                                .render());
    std::printf("wrote 01_loss.png, 01_fit.png and 01_network.dot\n");
    return check.ok && by_hand_ok ? 0 : 1;
}
