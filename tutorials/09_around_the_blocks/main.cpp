/// \file
/// \brief Tutorial 9: the parts of a GPT around its blocks — token and position embeddings, the
/// final layer norm and the LM head (with weight tying), cross-entropy and its gradient, weight
/// initialisation, and the AdamW update.
///
/// Each part is shown on numbers small enough to check: an embedding lookup is a one-hot row times
/// a table, and its backward adds rows; attention ignores the order of its inputs, which is why
/// positions are added; the GPT's forward pass, piece by piece, equals `GPT::forward`; the gradient
/// of cross-entropy is softmax − one-hot, compared with autograd; the spread of the activations at
/// initialisation explains the first loss, ln V; and three AdamW steps by hand equal
/// `qkv::optim::AdamW` in float64. See README.md.
#include <qkv/qkv.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace qkv;

namespace {

// Standard deviation of all the elements of a tensor: the spread of a layer's activations.
double stddev(const Tensor& t) {
    const auto v = t.to_vector<double>();
    double mean = 0, sq = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    return std::sqrt(sq / double(v.size()));
}

// The largest |value| of a tensor (0 for a tensor of zeros).
double max_abs(const Tensor& t) { return max_abs_diff(t, zeros_like(t)); }

// Values printed with a fixed width, between brackets.
std::string vec_str(const std::vector<double>& v, const char* format = "{:8.4f}") {
    std::vector<std::string> parts;
    for (double x : v) parts.push_back(fmt::format(fmt::runtime(format), x));
    return fmt::format("[{}]", fmt::join(parts, " "));
}

void report(const char* what, double diff) { fmt::print("{}: max |difference| = {:.1e}\n", what, diff); }

// Positions 0 1 2 3 of a (1, 4, C) sequence, reordered as 2 0 3 1.
Tensor reorder(const Tensor& x) {
    return concat({narrow(x, 1, 2, 1), narrow(x, 1, 0, 1), narrow(x, 1, 3, 1), narrow(x, 1, 1, 1)}, 1);
}

}  // namespace

int main() {
    Generator gen(9);

    // [embedding]
    // A token id becomes a vector by looking up a row of a table E (V, C): row `id`. Written as
    // algebra, that is a one-hot row vector times E: the lookup is a linear layer whose input
    // happens to be one-hot, done without the multiplications.
    const Tensor E = randn({5, 3}, gen, f64).requires_grad_();  // V = 5 tokens, C = 3 channels
    const Tensor ids = from(std::vector<std::int32_t>{3, 1, 3}, {1, 3});
    const Tensor h = embedding(E, ids);  // (1, 3, 3): rows 3, 1, 3 of E
    std::vector<double> hot(3 * 5, 0.0);
    hot[0 * 5 + 3] = hot[1 * 5 + 1] = hot[2 * 5 + 3] = 1.0;
    fmt::print("token embedding: ids [3 1 3] -> {} vectors of C = {}\n", h.size(1), h.size(2));
    report("lookup vs one-hot · E", max_abs_diff(reshape(h, {3, 3}), matmul(from(hot, {3, 5}), E.detach())));

    // Its backward: each position's gradient is *added* to the row it read. Token 3 is read twice,
    // so its row receives both positions' gradients; rows nobody read receive nothing.
    const Tensor R = randn({1, 3, 3}, gen, f64);  // L = Σ R ⊙ h, so dL/dh = R
    sum(h * R).backward();
    const Tensor dE = E.grad(), r = reshape(R, {3, 3});
    report("dE row 3 vs R[0] + R[2]", max_abs_diff(narrow(dE, 0, 3, 1), narrow(r, 0, 0, 1) + narrow(r, 0, 2, 1)));
    report("dE row 1 vs R[1]", max_abs_diff(narrow(dE, 0, 1, 1), narrow(r, 0, 1, 1)));
    fmt::print("largest |dE| in rows 0, 2, 4 (tokens not in the input): {}\n\n",
               std::max({max_abs(narrow(dE, 0, 0, 1)), max_abs(narrow(dE, 0, 2, 1)), max_abs(narrow(dE, 0, 4, 1))}));
    // [embedding]

    // [positions]
    // Attention compares every query with every key and averages the values: nothing in it knows
    // which position a vector came from. Reorder the input of a (non-causal) attention layer and its
    // output is the same vectors, reordered the same way.
    const Tensor x = randn({1, 4, 8}, gen, f64);
    auto self_attention = [](const Tensor& s) { return attention(s, s, s); };
    report("attention(reordered x) vs reordered attention(x)",
           max_abs_diff(self_attention(reorder(x)), reorder(self_attention(x))));
    // Add a different vector to each position and the reordered sequence is a different input.
    const Tensor P = randn({4, 8}, gen, f64);  // one (learned) vector per position, (T, C)
    report("attention(reordered x + P) vs reordered attention(x + P)",
           max_abs_diff(self_attention(reorder(x) + P), reorder(self_attention(x + P))));
    fmt::print("\n");
    // [positions]

    // [gpt]
    // The GPT of tutorial 10, for the reverse task: V = 12 tokens, sequences of 33, config S.
    const auto task = data::make_task({"reverse", 16, true});
    nn::GPTConfig gc;
    gc.vocab = task->vocab().size();
    gc.block_size = task->sequence_length();
    gc.dim = 64;
    gc.heads = 4;
    gc.layers = 2;
    gc.seed = 0;
    nn::GPT model(gc);
    const std::int64_t C = gc.dim, V = gc.vocab;

    // Where its parameters are.
    std::int64_t in_blocks = 0, in_ln_f = 0;
    for (const auto& [name, p] : model.named_parameters()) {
        if (name.rfind("blocks.", 0) == 0) in_blocks += p.numel();
        if (name.rfind("ln_f.", 0) == 0) in_ln_f += p.numel();
    }
    fmt::print("GPT for reverse: V = {}, block_size = {}, C = {}, {} blocks of {} heads\n", V, gc.block_size, C, gc.layers,
               gc.heads);
    fmt::print("  tok_emb.weight   {:<8} {:6}\n", shape_str(model.tok_emb.weight.shape()), model.tok_emb.weight.numel());
    fmt::print("  pos_emb.weight   {:<8} {:6}\n", shape_str(model.pos_emb.weight.shape()), model.pos_emb.weight.numel());
    fmt::print("  blocks.0, .1              {:6}  (2 × (12·C² + 13·C))\n", in_blocks);
    fmt::print("  ln_f.weight, .bias        {:6}\n", in_ln_f);
    fmt::print("  lm_head.weight   {:<8} {:6}\n", shape_str(model.lm_head->weight.shape()), model.lm_head->weight.numel());
    fmt::print("  total                     {:6}\n", model.num_parameters());
    nn::GPTConfig tied_config = gc;
    tied_config.tie_weights = true;
    nn::GPT tied(tied_config);
    fmt::print("with tie_weights: {} parameters ({} fewer: the LM head is the token table)\n\n", tied.num_parameters(),
               model.num_parameters() - tied.num_parameters());

    // The forward pass, piece by piece, on one training batch: 32 sequences of T = 32 tokens.
    Generator batches(7);
    const data::Batch batch = data::make_batch(*task, 32, data::Split::train, batches);
    const std::int64_t T = batch.inputs.size(1);
    const Tensor tok = model.tok_emb(batch.inputs);  // (B, T, C): a row of the token table per token
    const Tensor pos = model.pos_emb.forward(T);     // (T, C): a row per position, the same for every sequence
    Tensor stream = tok + pos;                       // (B, T, C) + (T, C): broadcast over the batch
    AttentionOptions causal;
    causal.causal = true;
    std::vector<Tensor> after_block;
    for (const auto& block : model.blocks()) after_block.push_back(stream = block->forward(stream, causal));
    const Tensor normed = model.ln_f(stream);                  // the final layer norm
    const Tensor logits = (*model.lm_head)(normed);            // (B, T, V): LN(h) · Wᵀ
    report("embeddings -> blocks -> ln_f -> lm_head vs model.forward", max_abs_diff(logits, model(batch.inputs)));
    // Tied weights: the logits are scores against the token table itself, LN(h) · Eᵀ. The table
    // is then used twice — by the lookup at the bottom and by the head at the top — so its gradient
    // is the sum of both uses, added up by autograd as in tutorial 2. In float64, to see it exactly.
    tied.to(f64);
    const Tensor targets = reshape(batch.targets, {-1});
    auto tied_logits = [&](const Tensor& table_in, const Tensor& table_out) {
        Tensor th = embedding(table_in, batch.inputs) + tied.pos_emb.forward(T);
        for (const auto& block : tied.blocks()) th = block->forward(th, causal);
        return linear(tied.ln_f(th), table_out);  // (B, T, V) = LN(h) · Eᵀ
    };
    Tensor& table = tied.tok_emb.weight;
    report("tied model: LN(h) · Eᵀ vs tied.forward", max_abs_diff(tied_logits(table, table), tied(batch.inputs)));
    auto table_grad = [&](const Tensor& table_in, const Tensor& table_out) {
        table.zero_grad();
        cross_entropy(reshape(tied_logits(table_in, table_out), {-1, V}), targets).backward();
        return table.grad().clone();
    };
    const Tensor both = table_grad(table, table), lookup_only = table_grad(table, table.detach()),
                 head_only = table_grad(table.detach(), table);
    report("tied model: dE vs dE through the lookup + dE through the head", max_abs_diff(both, lookup_only + head_only));
    fmt::print("\n");
    // [gpt]

    // [cross_entropy]
    // Cross-entropy of one position: ℓ = −log p_y with p = softmax(z), the probability the model
    // gave the right token. Its gradient with respect to the logits is p − onehot(y). The mean over
    // N counted positions divides it by N; an ignored position (target −100) gets 0.
    const Tensor z = (randn({4, 5}, gen, f64) * 2.0).detach().requires_grad_();  // 4 positions, V = 5
    const std::vector<std::int32_t> y{2, 0, data::kIgnoreIndex, 4};
    const Tensor loss = cross_entropy(z, from(y, {4}));
    loss.backward();
    const auto p = softmax(z.detach(), -1).to_vector<double>();
    std::vector<double> by_hand(4 * 5, 0.0);
    double loss_by_hand = 0;
    const double N = 3;  // positions that count
    for (std::size_t i = 0; i < 4; ++i) {
        if (y[i] == data::kIgnoreIndex) continue;
        for (std::size_t j = 0; j < 5; ++j)
            by_hand[i * 5 + j] = (p[i * 5 + j] - (int(j) == y[i] ? 1.0 : 0.0)) / N;
        loss_by_hand += -std::log(p[i * 5 + std::size_t(y[i])]) / N;
    }
    fmt::print("cross-entropy of 4 positions (the third ignored), V = 5: loss {:.4f}\n", loss.item());
    report("loss vs mean of −log p_y", std::abs(loss.item() - loss_by_hand));
    report("autograd dL/dz vs (p − onehot) / 3", max_abs_diff(z.grad(), from(by_hand, {4, 5})));
    const std::vector<double> p0(p.begin(), p.begin() + 5);
    fmt::print("position 0, target 2:\n");
    fmt::print("  p = softmax(z)  {}\n", vec_str(p0));
    fmt::print("  onehot(2)       {}\n", vec_str({0, 0, 1, 0, 0}));
    const auto g = z.grad().to_vector<double>();
    fmt::print("  3 · dL/dz       {}  (sums to {:.1f})\n", vec_str({3 * g[0], 3 * g[1], 3 * g[2], 3 * g[3], 3 * g[4]}),
               std::abs(3 * (g[0] + g[1] + g[2] + g[3] + g[4])));
    fmt::print("  ignored position: largest |dL/dz| = {}\n\n", max_abs(narrow(z.grad(), 0, 2, 1)));
    // [cross_entropy]

    // [init]
    // How big are the numbers at initialisation? GPT initialises every weight matrix and both
    // embedding tables from N(0, 0.02²), biases 0, layer norms γ = 1, β = 0.
    fmt::print("at initialisation (weights N(0, 0.02²)), spread of the activations over one batch:\n");
    fmt::print("  token embeddings       std {:.4f}\n", stddev(tok));
    fmt::print("  position embeddings    std {:.4f}\n", stddev(pos));
    fmt::print("  tokens + positions     std {:.4f}\n", stddev(tok + pos));
    for (std::size_t l = 0; l < after_block.size(); ++l)
        fmt::print("  after block {}          std {:.4f}\n", l, stddev(after_block[l]));
    fmt::print("  after ln_f             std {:.4f}\n", stddev(normed));
    fmt::print("  logits                 std {:.4f}  (0.02 · √C = {:.4f})\n", stddev(logits), 0.02 * std::sqrt(double(C)));
    fmt::print("loss at initialisation {:.4f}; a uniform guess over V = {} tokens: ln {} = {:.4f}\n",
               cross_entropy(reshape(logits, {-1, V}), targets).item(), V, V, std::log(double(V)));
    // The same normalised activations through LM heads initialised with a larger spread.
    fmt::print("the same batch with the LM head drawn from N(0, s²):\n");
    for (const double s : {0.02, 1 / std::sqrt(double(C)), 1.0}) {
        Generator head_gen(3);
        const Tensor W = randn({V, C}, head_gen) * s;
        const Tensor l = linear(normed, W);
        fmt::print("  s = {:5.3f}: logits std {:6.3f}, loss {:7.4f}\n", s, stddev(l), cross_entropy(reshape(l, {-1, V}), targets).item());
    }
    fmt::print("\n");
    // [init]

    // [adamw]
    // AdamW on one parameter vector, by hand and with qkv::optim::AdamW, in float64. A larger learning
    // rate and decay than training uses (η = 0.01, λ = 0.1) so the effects show in 4 decimals.
    const double lr = 0.01, wd = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    optim::AdamWOptions ao;
    ao.lr = lr;
    ao.weight_decay = wd;
    Tensor theta = from({0.5, -1.0, 2.0, 1.0}, {4}, f64).requires_grad_();
    optim::AdamW opt({{"theta", theta}}, ao);
    // Three steps' gradients: entries of very different sizes, and a last weight that gets none.
    const std::vector<std::vector<double>> grads{{0.1, -0.002, 30.0, 0.0}, {0.2, -0.001, 10.0, 0.0}, {-0.1, -0.003, 20.0, 0.0}};
    std::vector<double> th{0.5, -1.0, 2.0, 1.0}, m(4, 0.0), v(4, 0.0);
    fmt::print("AdamW, η = {}, λ = {}, β₁ = {}, β₂ = {}, ε = {}; θ = {}\n", lr, wd, beta1, beta2, eps, vec_str(th));
    for (int t = 1; t <= 3; ++t) {
        const std::vector<double>& gt = grads[std::size_t(t - 1)];
        const std::vector<double> before = th;
        for (std::size_t i = 0; i < 4; ++i) {
            th[i] *= 1 - lr * wd;                           // decoupled weight decay: θ ← θ(1 − ηλ)
            m[i] = beta1 * m[i] + (1 - beta1) * gt[i];      // running mean of g
            v[i] = beta2 * v[i] + (1 - beta2) * gt[i] * gt[i];  // running mean of g²
            const double m_hat = m[i] / (1 - std::pow(beta1, t));  // bias corrections: both averages
            const double v_hat = v[i] / (1 - std::pow(beta2, t));  // start at 0
            th[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
        }
        theta.set_grad(from(gt, {4}));
        opt.step();
        std::vector<double> change(4);
        for (std::size_t i = 0; i < 4; ++i) change[i] = th[i] - before[i];
        fmt::print("step {}: g = {}\n", t, vec_str(gt, "{:8.3f}"));
        fmt::print("        θ by hand {}  change {}\n", vec_str(th), vec_str(change, "{:8.5f}"));
        fmt::print("        θ AdamW   {}  max |difference| = {:.1e}\n", vec_str(theta.detach().to_vector<double>()),
                   max_abs_diff(theta.detach(), from(th, {4})));
    }
    // Without the bias corrections, step 1 would divide m = (1 − β₁)g by √v = √(1 − β₂)·|g|.
    fmt::print("without bias correction step 1 would move each weight by (1 − β₁)/√(1 − β₂) = {:.3f} times η\n",
               (1 - beta1) / std::sqrt(1 - beta2));
    // A weight with no gradient: AdamW only shrinks it; Adam's L2 decay (λθ added to g) is divided
    // by √v like a gradient and moves it by a whole η.
    Tensor w_adamw = from({1.0}, {1}, f64).requires_grad_(), w_adam = from({1.0}, {1}, f64).requires_grad_();
    optim::AdamW decoupled({{"w", w_adamw}}, ao);
    optim::AdamOptions l2;
    l2.lr = lr;
    l2.weight_decay = wd;
    optim::Adam coupled({{"w", w_adam}}, l2);
    w_adamw.set_grad(zeros({1}, f64));
    w_adam.set_grad(zeros({1}, f64));
    decoupled.step();
    coupled.step();
    fmt::print("a weight of 1 with gradient 0, one step: AdamW -> {:.6f}, Adam with L2 decay -> {:.6f}\n\n",
               w_adamw.detach().item(), w_adam.detach().item());
    // [adamw]

    // [step]
    // All of it together: one training step of the GPT on the batch above, with the recipe of
    // tutorial 10 (AdamW, η = 1e-3, λ = 0.01).
    optim::AdamWOptions recipe;
    recipe.lr = 1e-3;
    recipe.weight_decay = 0.01;
    optim::AdamW train_opt(model.named_parameters(), recipe);
    const Tensor before = model.loss(batch.inputs, batch.targets);
    before.backward();
    train_opt.step();
    fmt::print("one AdamW step of the GPT on this batch: loss {:.4f} -> {:.4f}\n", before.item(),
               model.loss(batch.inputs, batch.targets).item());
    // [step]
}
