// backends/tests/native_test_util.hpp — shared helpers for the native engine tests:
// temporary model folders written by mkmodel, and a dense, unbatched, unpaged
// reference forward pass written independently of backends/native/model.cpp
// (plain loops, no BLAS, contiguous per-sequence K/V, its own RoPE tables).
#pragma once

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "backends/native/mkmodel.hpp"
#include "backends/native/model_weights.hpp"

namespace yard::backends::native::testing {

struct temp_dir {
  std::string path;
  temp_dir() {
    char buf[] = "/tmp/yard_native_XXXXXX";
    path = ::mkdtemp(buf);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string sub(const std::string& name) const { return path + "/" + name; }
};

inline std::string make_model(const temp_dir& d, const std::string& name, mkmodel_options o = {}) {
  o.out = d.sub(name);
  auto st = write_random_model(o);
  if (!st) throw std::runtime_error(st.err().describe());
  return o.out;
}

// Dense reference: logits for every position of `tokens` (recomputed from scratch).
inline std::vector<std::vector<float>> reference_logits(const model_weights& w, const std::vector<std::uint32_t>& tokens) {
  const auto& c = w.config;
  const int H = c.hidden_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim,
            I = c.intermediate_size, V = c.vocab_size, T = static_cast<int>(tokens.size());
  // Any kept precision: each row widened to f32 (int8 times its scale), then summed in double.
  auto matvec = [](const weight_matrix& W, const float* x, int out, int in, std::vector<double>& y) {
    y.assign(out, 0.0);
    std::vector<float> row(in);
    for (int o = 0; o < out; ++o) {
      W.row_to_f32(o, row.data());
      double s = 0;
      for (int i = 0; i < in; ++i) s += static_cast<double>(row[i]) * x[i];
      y[o] = s;
    }
  };
  auto norm = [&](const std::vector<float>& x, const float* g) {
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    double sc = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    std::vector<float> o(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) o[i] = static_cast<float>(x[i] * sc * g[i]);
    return o;
  };
  // RoPE frequencies, written out again from the HF formulas.
  std::vector<double> freq(hd / 2);
  for (int i = 0; i < hd / 2; ++i) {
    double f = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / hd);
    if (c.rope_scaling_type == "linear") f /= c.rope_factor;
    if (c.rope_scaling_type == "llama3") {
      double wl = 2 * M_PI / f, lo = c.rope_original_max_position / c.rope_low_freq_factor,
             hi = c.rope_original_max_position / c.rope_high_freq_factor;
      if (wl > lo) f = f / c.rope_factor;
      else if (wl >= hi) {
        double sm = (c.rope_original_max_position / wl - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        f = (1 - sm) * f / c.rope_factor + sm * f;
      }
    }
    freq[i] = f;
  }
  auto rope = [&](std::vector<double>& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        double a = v[h * hd + i], b = v[h * hd + i + hd / 2];
        double ang = pos * static_cast<double>(static_cast<float>(freq[i]));
        double cs = std::cos(ang), sn = std::sin(ang);
        v[h * hd + i] = a * cs - b * sn;
        v[h * hd + i + hd / 2] = b * cs + a * sn;
      }
  };
  std::vector<std::vector<float>> x(T, std::vector<float>(H));
  for (int t = 0; t < T; ++t) w.embed.row_to_f32(static_cast<int>(tokens[t]), x[t].data());
  for (const auto& L : w.layers) {
    std::vector<std::vector<double>> K(T), Vv(T), Q(T);
    for (int t = 0; t < T; ++t) {
      auto xn = norm(x[t], L.attn_norm);
      matvec(L.wq, xn.data(), nh * hd, H, Q[t]);
      matvec(L.wk, xn.data(), nkv * hd, H, K[t]);
      matvec(L.wv, xn.data(), nkv * hd, H, Vv[t]);
      if (L.bq) for (int i = 0; i < nh * hd; ++i) Q[t][i] += L.bq[i];
      if (L.bk) for (int i = 0; i < nkv * hd; ++i) K[t][i] += L.bk[i];
      if (L.bv) for (int i = 0; i < nkv * hd; ++i) Vv[t][i] += L.bv[i];
      rope(Q[t], nh, t);
      rope(K[t], nkv, t);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<float> att(nh * hd, 0.0f);
      for (int h = 0; h < nh; ++h) {
        int kh = h / (nh / nkv);
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int p = 0; p <= t; ++p) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += Q[t][h * hd + i] * K[p][kh * hd + i];
          s[p] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[p]);
        }
        double z = 0;
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int i = 0; i < hd; ++i) {
          double a = 0;
          for (int p = 0; p <= t; ++p) a += s[p] / z * Vv[p][kh * hd + i];
          att[h * hd + i] = static_cast<float>(a);
        }
      }
      std::vector<double> o;
      matvec(L.wo, att.data(), H, nh * hd, o);
      for (int i = 0; i < H; ++i) x[t][i] += static_cast<float>(o[i]);
      auto xn = norm(x[t], L.ffn_norm);
      std::vector<double> g, u, dn;
      matvec(L.w_gate, xn.data(), I, H, g);
      matvec(L.w_up, xn.data(), I, H, u);
      std::vector<float> act(I);
      for (int i = 0; i < I; ++i) act[i] = static_cast<float>(g[i] / (1 + std::exp(-g[i])) * u[i]);
      matvec(L.w_down, act.data(), H, I, dn);
      for (int i = 0; i < H; ++i) x[t][i] += static_cast<float>(dn[i]);
    }
  }
  std::vector<std::vector<float>> out(T);
  for (int t = 0; t < T; ++t) {
    auto xn = norm(x[t], w.final_norm);
    std::vector<double> lg;
    matvec(w.lm_head, xn.data(), V, H, lg);
    out[t].assign(lg.begin(), lg.end());
  }
  return out;
}

// max |a-b| / max |b|
inline double rel_error(const float* a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / std::max(den, 1e-30);
}

inline std::uint32_t argmax(const std::vector<float>& v) {
  std::uint32_t a = 0;
  for (std::uint32_t i = 1; i < v.size(); ++i)
    if (v[i] > v[a]) a = i;
  return a;
}

// Greedy continuation with the dense reference.
inline std::vector<std::uint32_t> reference_greedy(const model_weights& w, std::vector<std::uint32_t> tokens, int n) {
  std::vector<std::uint32_t> out;
  for (int i = 0; i < n; ++i) {
    auto lg = reference_logits(w, tokens);
    auto t = argmax(lg.back());
    out.push_back(t);
    tokens.push_back(t);
  }
  return out;
}

}  // namespace yard::backends::native::testing
