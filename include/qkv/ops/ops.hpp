/// \file
/// \brief The differentiable functions on tensors: elementwise math, reductions, shape changes,
/// matmul, softmax, losses, embedding lookup and masking.
///
/// A reader learns here the vocabulary a transformer is written in. Every function returns a new
/// tensor and, when an input requires a gradient, records a node whose backward pass is written
/// next to its forward pass in src/ops/ with the derivative in a comment. Every function checks its
/// arguments and throws qkv::Error naming itself and the offending shapes or dtypes.
///
/// Binary elementwise functions broadcast like NumPy: shapes are aligned at the right and a size-1
/// dimension stretches to match the other operand, e.g. (B, T, C) + (C) adds a bias to every
/// position. In backward, the gradient of a broadcast operand is summed over the dimensions it was
/// stretched along. Both operands must have the same dtype (no silent promotion).
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/core/autograd.hpp"
#include "qkv/core/generator.hpp"
#include "qkv/core/tensor.hpp"

namespace qkv {

// ---- elementwise, binary (broadcasting) --------------------------------------------------------

/// \brief \f$ a + b \f$, broadcast. \param a left operand \param b right operand
/// \return the elementwise sum (the broadcast shape of a and b)
Tensor add(const Tensor& a, const Tensor& b);
/// \brief \f$ a - b \f$, broadcast. \param a left operand \param b right operand
/// \return the elementwise difference (the broadcast shape of a and b)
Tensor sub(const Tensor& a, const Tensor& b);
/// \brief \f$ a \odot b \f$ (elementwise product), broadcast. \param a left operand \param b right operand
/// \return the elementwise product (the broadcast shape of a and b)
Tensor mul(const Tensor& a, const Tensor& b);
/// \brief \f$ a / b \f$ elementwise, broadcast. \param a numerator \param b denominator
/// \return the elementwise quotient (the broadcast shape of a and b)
Tensor div(const Tensor& a, const Tensor& b);

// ---- elementwise with a scalar ----------------------------------------------------------------

/// \brief \f$ x + s \f$. \param x tensor \param s scalar
/// \return \f$ x + s \f$ (x's shape)
Tensor add(const Tensor& x, double s);
/// \brief \f$ x \cdot s \f$. \param x tensor \param s scalar
/// \return \f$ x \cdot s \f$ (x's shape)
Tensor mul(const Tensor& x, double s);
/// \brief \f$ s / x \f$ (the scalar divided by each element). \param s scalar \param x tensor
/// \return \f$ s / x \f$ (x's shape)
Tensor rdiv(double s, const Tensor& x);
/// \brief \f$ x^p \f$ for a scalar exponent p. \param x base \param p exponent
/// \return \f$ x^p \f$ (x's shape)
Tensor pow(const Tensor& x, double p);

// ---- elementwise, unary ---------------------------------------------------------------------

/// \brief \f$ -x \f$. \param x input
/// \return \f$ -x \f$ (x's shape)
Tensor neg(const Tensor& x);
/// \brief \f$ e^x \f$. \param x input
/// \return \f$ e^x \f$ (x's shape)
Tensor exp(const Tensor& x);
/// \brief Natural logarithm \f$ \ln x \f$ (−inf at 0, NaN below, as in IEEE arithmetic). \param x input
/// \return \f$ \ln x \f$ (x's shape)
Tensor log(const Tensor& x);
/// \brief \f$ \sqrt{x} \f$. \param x input
/// \return \f$ \sqrt{x} \f$ (x's shape)
Tensor sqrt(const Tensor& x);
/// \brief \f$ \tanh x \f$. \param x input
/// \return \f$ \tanh x \f$ (x's shape)
Tensor tanh(const Tensor& x);
/// \brief The logistic function \f$ \sigma(x) = 1/(1+e^{-x}) \f$. \param x input
/// \return \f$ \sigma(x) \f$ (x's shape)
Tensor sigmoid(const Tensor& x);
/// \brief \f$ \max(0, x) \f$ (gradient 0 at x = 0). \param x input
/// \return \f$ \max(0, x) \f$ (x's shape)
Tensor relu(const Tensor& x);
/// \brief GELU, tanh approximation (GPT-2's):
/// \f$ \tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715 x^3))) \f$. \param x input
/// \return the approximate GELU of each element (x's shape)
Tensor gelu(const Tensor& x);
/// \brief Exact GELU \f$ x\,\Phi(x) = \tfrac12 x\,(1 + \mathrm{erf}(x/\sqrt2)) \f$. \param x input
/// \return the exact GELU of each element (x's shape)
Tensor gelu_erf(const Tensor& x);

// ---- reductions -----------------------------------------------------------------------------

/// \brief Sum of all elements, as a 0-d tensor. \param x input
/// \return the sum, a 0-d tensor ()
Tensor sum(const Tensor& x);
/// \brief Sum along one dimension.
/// \param x input \param dim the dimension (negative counts from the end)
/// \param keepdim keep the reduced dimension with size 1
/// \return the sums (x's shape without \p dim, or with it set to 1 when \p keepdim)
Tensor sum(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// \brief Mean of all elements, as a 0-d tensor. \param x input
/// \return the mean, a 0-d tensor ()
Tensor mean(const Tensor& x);
/// \brief Mean along one dimension.
/// \param x input \param dim the dimension \param keepdim keep it with size 1
/// \return the means (x's shape without \p dim, or with it set to 1 when \p keepdim)
Tensor mean(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// \brief Largest element, as a 0-d tensor; the gradient goes to the first maximal element.
/// \param x input (at least one element)
/// \return the largest element, a 0-d tensor ()
Tensor max(const Tensor& x);
/// \brief Largest value along one dimension; the gradient goes to the first maximal element.
/// \param x input \param dim the dimension \param keepdim keep it with size 1
/// \return the largest values (x's shape without \p dim, or with it set to 1 when \p keepdim)
Tensor max(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// \brief Variance along one dimension:
/// \f$ \frac{1}{n - c}\sum_i (x_i - \bar x)^2 \f$ with c = 1 when \p unbiased, else 0
/// (layer norm uses the biased form).
/// \param x input \param dim the dimension \param keepdim keep it with size 1
/// \param unbiased divide by n − 1 (PyTorch's default) rather than n
/// \return the variances (x's shape without \p dim, or with it set to 1 when \p keepdim)
Tensor var(const Tensor& x, std::int64_t dim, bool keepdim = false, bool unbiased = true);
/// \brief Index of the largest value along a dimension, as i32 (not differentiable).
/// \param x input \param dim the dimension \param keepdim keep it with size 1
/// \return i32 indices in [0, x.size(dim)), the first maximum of each fibre (x's shape without
/// \p dim, or with it set to 1 when \p keepdim)
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);

// ---- shape ----------------------------------------------------------------------------------

/// \brief Same elements, new shape; shares storage with \p x (free). One entry may be -1 (inferred).
/// \param x input \param shape the new shape
/// \return x's elements with the new shape (\p shape, with -1 replaced by the inferred size)
Tensor reshape(const Tensor& x, const Shape& shape);
/// \brief Alias of reshape() (every qkv tensor is contiguous, so a view always exists).
/// \param x input \param shape the new shape
/// \return x's elements with the new shape (\p shape, with -1 replaced by the inferred size)
Tensor view(const Tensor& x, const Shape& shape);
/// \brief Swap two dimensions (copies).
/// \param x input \param d0 first dimension \param d1 second dimension
/// \return a copy with dimensions \p d0 and \p d1 exchanged (x's shape, those sizes swapped)
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1);
/// \brief Reorder dimensions: output dim i is input dim dims[i] (copies).
/// \param x input \param dims a permutation of 0..ndim-1
/// \return a copy with the dimensions reordered (size i is x.size(dims[i]))
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// \brief Elements start ≤ i < start+length along \p dim (copies).
/// \param x input \param dim the dimension \param start first index \param length how many
/// \return the selected elements (x's shape with size \p length at \p dim)
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
/// \brief Python-style slice start:end:step along \p dim (copies). Negative start/end count from
/// the end; bounds are clamped like Python's.
/// \param x input \param dim the dimension \param start first index \param end bound (excluded)
/// \param step stride (≥ 1)
/// \return the selected elements (x's shape with size ⌈(end − start)/step⌉ at \p dim, after
/// clamping; 0 if the range is empty)
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// \brief Join tensors along an existing dimension (all other sizes must match).
/// \param xs the tensors (at least one) \param dim the dimension
/// \return the joined tensor (the common shape, with the sizes at \p dim added up)
Tensor concat(const std::vector<Tensor>& xs, std::int64_t dim);
/// \brief Cut into consecutive pieces of the given sizes along \p dim (sizes must add up).
/// \param x input \param sizes size of each piece \param dim the dimension
/// \return one tensor per entry of \p sizes, in order (x's shape with size sizes[i] at \p dim)
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim);
/// \brief Cut into pieces of \p size along \p dim (the last one may be shorter).
/// \param x input \param size size of each piece (≥ 1) \param dim the dimension
/// \return ⌈x.size(dim) / size⌉ tensors, in order (x's shape with size \p size at \p dim, the last
/// possibly smaller)
std::vector<Tensor> split(const Tensor& x, std::int64_t size, std::int64_t dim);
/// \brief Insert a size-1 dimension at \p dim (shares storage).
/// \param x input \param dim position in the output (−1 appends)
/// \return x with one more dimension, of size 1 at \p dim
Tensor unsqueeze(const Tensor& x, std::int64_t dim);
/// \brief Remove dimension \p dim, which must have size 1 (shares storage).
/// \param x input \param dim the dimension
/// \return x with dimension \p dim removed
Tensor squeeze(const Tensor& x, std::int64_t dim);
/// \brief Remove every size-1 dimension (shares storage). \param x input
/// \return x without its size-1 dimensions (a 0-d tensor if every size is 1)
Tensor squeeze(const Tensor& x);
/// \brief Broadcast to a larger shape (copies); -1 keeps a size. The gradient sums back.
/// \param x input \param shape the target shape
/// \return a copy of x broadcast to \p shape (with each -1 replaced by x's size)
Tensor expand(const Tensor& x, const Shape& shape);

// ---- matmul -----------------------------------------------------------------------------------

/// \brief Matrix product. (M, K) @ (K, N) → (M, N); with leading batch dimensions, a batch of
/// products whose batch dimensions broadcast: (…, M, K) @ (…, K, N) → (…, M, N), and
/// (…, M, K) @ (K, N) → (…, M, N) (a linear layer over every position). Both inputs need ≥ 2 dims.
/// Backward: \f$ dA = dC\,B^\top \f$, \f$ dB = A^\top dC \f$ (computed without copying transposes).
/// \param a left operand \param b right operand
/// \return the product (M, N), or (…, M, N) with the broadcast batch dimensions
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax and losses --------------------------------------------------------------------

/// \brief \f$ \mathrm{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m} \f$ along \p dim, where
/// m = max_j x_j keeps exp from overflowing. Fused, with a hand-derived backward.
/// A fibre that is −inf everywhere (fully masked) gives zeros, not NaN.
/// \param x input \param dim the dimension normalised over
/// \return the probabilities, each fibre along \p dim summing to 1 (x's shape)
Tensor softmax(const Tensor& x, std::int64_t dim = -1);
/// \brief \f$ x_i - m - \log\sum_j e^{x_j - m} \f$ along \p dim (stable log of softmax).
/// A fibre that is −inf everywhere gives −inf everywhere.
/// \param x input \param dim the dimension
/// \return the log-probabilities (x's shape)
Tensor log_softmax(const Tensor& x, std::int64_t dim = -1);

/// How a loss combines per-position values.
enum class Reduction {
    mean,  ///< average over the counted (non-ignored) positions
    sum,   ///< sum over positions
    none,  ///< one loss per position (ignored positions give 0)
};

/// \brief Cross-entropy between class logits and integer targets, fused and stable:
/// \f$ \ell = \log\sum_j e^{z_j} - z_t \f$ per position, with gradient
/// \f$ \partial\ell/\partial z = \mathrm{softmax}(z) - \mathrm{onehot}(t) \f$.
/// Positions whose target equals \p ignore_index count for nothing (padding). With
/// Reduction::mean and every position ignored, the loss is 0 (and so is its gradient).
/// \param logits (…, V) floating \param targets (…) i32 in [0, V) or ignore_index
/// \param ignore_index target value to skip \param reduction how to combine positions
/// \return the loss: a 0-d tensor () for Reduction::mean and Reduction::sum, one loss per position
/// (…) for Reduction::none
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);

/// \brief Embedding lookup: row ids[...] of \p weight. (V, C) with ids (…) → (…, C).
/// Backward scatter-adds each position's gradient into its row (rows used twice get both).
/// \param weight (V, C) table \param ids i32 token ids in [0, V)
/// \return the rows of \p weight picked by \p ids (…, C)
Tensor embedding(const Tensor& weight, const Tensor& ids);

// ---- masks -------------------------------------------------------------------------------------

/// \brief \f$ y = \mathrm{mask} ?\ \mathrm{value} : x \f$; \p mask (b8) broadcasts to x's shape.
/// No gradient flows to masked positions.
/// \param x input \param mask b8 mask \param value fill value
/// \return x with \p value where \p mask is true (x's shape)
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
/// \brief \f$ y = \mathrm{cond} ?\ a : b \f$ elementwise, all three broadcast together.
/// \param cond b8 condition \param a chosen where cond is true \param b chosen elsewhere
/// \return elements of \p a where \p cond is true and of \p b elsewhere (the broadcast shape of
/// the three)
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- comparisons (not differentiable; produce b8 masks) ----------------------------------------

/// \brief Elementwise \f$ x = s \f$ as b8. \param x input \param s scalar
/// \return a b8 mask, 1 where \f$ x = s \f$ (x's shape)
Tensor eq(const Tensor& x, double s);
/// \brief Elementwise \f$ x > s \f$ as b8. \param x input \param s scalar
/// \return a b8 mask, 1 where \f$ x > s \f$ (x's shape)
Tensor gt(const Tensor& x, double s);
/// \brief Elementwise \f$ x < s \f$ as b8. \param x input \param s scalar
/// \return a b8 mask, 1 where \f$ x < s \f$ (x's shape)
Tensor lt(const Tensor& x, double s);
/// \brief Elementwise \f$ a = b \f$ as b8, broadcast (any dtype, same for both). \param a left \param b right
/// \return a b8 mask, 1 where \f$ a = b \f$ (the broadcast shape of a and b)
Tensor eq(const Tensor& a, const Tensor& b);
/// \brief Elementwise logical not of a b8 tensor. \param mask input
/// \return a b8 mask, 1 where \p mask is 0 (mask's shape)
Tensor logical_not(const Tensor& mask);
/// \brief Lower-triangular b8 mask of shape (rows, cols): true where col ≤ row + diagonal.
/// A causal attention mask is `logical_not(tril_mask(T, T))` (true = masked out).
/// \param rows rows \param cols columns \param diagonal offset of the diagonal
/// \return the b8 mask (rows, cols)
Tensor tril_mask(std::int64_t rows, std::int64_t cols, std::int64_t diagonal = 0);

// ---- neural-network ops (fused: one node, hand-derived backward) -------------------------------

/// \brief A linear layer \f$ y = x W^\top + b \f$ over the last dimension, as one op:
/// (…, in) with W (out, in) and b (out) → (…, out). W is stored (out, in) as in PyTorch; the
/// transpose is a flag to the GEMM, never a copy. Backward: \f$ dx = dy\,W \f$,
/// \f$ dW = dy^\top x \f$ (summed over all leading positions), \f$ db = \sum dy \f$.
/// \param x input (…, in) \param weight (out, in) \param bias (out), or an undefined tensor for none
/// \return \f$ x W^\top + b \f$ (…, out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

/// \brief An MLP's first layer and its exact GELU as one op: \f$ y = \mathrm{GELU}(x W^\top + b) \f$,
/// equal bit for bit to `gelu_erf(linear(x, weight, bias))`. The GELU runs on each tile of the
/// product as the GEMM finishes it, while it is in cache, and the pre-activation is never stored
/// (see ops/linear.cpp). Backward: \f$ dh = dy \odot \mathrm{GELU}'(h) \f$, then linear()'s.
/// \param x input (…, in) \param weight (out, in) \param bias (out), or an undefined tensor for none
/// \return \f$ \mathrm{GELU}(x W^\top + b) \f$ (…, out)
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

/// \brief Layer normalisation over the last dimension, fused:
/// \f$ y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta \f$ with the biased
/// variance \f$ \sigma^2 \f$ of each row (Ba, Kiros & Hinton, 2016).
/// \param x input (…, C) \param gamma scale (C) \param beta shift (C) \param eps added to the variance
/// \return the normalised, scaled and shifted rows (x's shape)
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

/// \brief Inverted dropout: in training, zero each element with probability \p p and scale the
/// survivors by 1/(1−p) so the expected value is unchanged; the identity when \p training is false
/// or p = 0. The mask is drawn from \p gen (reproducible).
/// \param x input \param p drop probability in [0, 1) \param gen random generator \param training apply it?
/// \return the masked and rescaled tensor (x's shape); \p x itself when not training or p = 0
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

/// \brief How the fused attention ops compute: materialising the T_q × T_k attention weights, or
/// tiled with online softmax (FlashAttention's algorithm), which never holds them.
///
/// Both give the same result up to rounding (tests hold them to 1e-6 relative in f32, 1e-12 in
/// f64). The tiled kernel's memory grows with T instead of T², and it recomputes the scores in the
/// backward. `automatic` picks the tiled kernel for long key sequences (at least
/// kTiledAttentionMinKeys keys), where it is measured faster, unless the caller asks for the
/// weights — only the materialising kernel has them.
enum class AttentionKernel {
    automatic,    ///< materialize, or tiled for ≥ kTiledAttentionMinKeys keys when no weights are asked for
    materialize,  ///< keep P = softmax(S) (T_q × T_k per slice): the readable reference, and the weights
    tiled,        ///< blocks of 64 × 64 scores and a log-sum-exp per query row (no weights)
};

/// Key-sequence length from which AttentionKernel::automatic uses the tiled kernel.
inline constexpr std::int64_t kTiledAttentionMinKeys = 256;

/// Options of the fused attention ops.
struct AttentionOptions {
    /// b8 mask broadcastable to (…, T_q, T_k): **true blocks** that query–key pair (like masked_fill).
    Tensor mask;
    /// Also block keys after the query: query i (of T_q, aligned to the *end* of the T_k keys, as when
    /// the keys include a cache of earlier positions) sees keys j ≤ i + T_k − T_q.
    bool causal = false;
    /// Score scale; 0 means \f$ 1/\sqrt{D} \f$.
    double scale = 0;
    /// If not null, receives the attention weights (…, T_q, T_k) — detached, for inspection. Asking
    /// for them rules out the tiled kernel (an error with AttentionKernel::tiled).
    Tensor* weights = nullptr;
    /// Which kernel computes (see AttentionKernel).
    AttentionKernel kernel = AttentionKernel::automatic;
};

/// \brief Scaled dot-product attention as one fused op:
/// \f$ \mathrm{softmax}(QK^\top/\sqrt{D} + M)\,V \f$ with q (…, T_q, D), k (…, T_k, D),
/// v (…, T_k, D_v) → (…, T_q, D_v). Masked scores become −∞; a query whose keys are all blocked gets
/// an output of zeros (not NaN). The backward is derived by hand (see docs: "how attention's backward
/// is derived"); the materialising kernel keeps the attention weights from the forward, the tiled
/// one only a log-sum-exp per query row (options.kernel).
/// \param q queries \param k keys \param v values \param options mask, causal, scale, weights
/// \return the attention output (…, T_q, D_v)
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

/// \brief The same fused attention with the heads packed in the channel dimension:
/// q (B, T_q, H·D), k (B, T_k, H·D), v (B, T_k, H·D_v) → (B, T_q, H·D_v). Head h uses channels
/// [h·D, (h+1)·D). Equal to splitting heads, calling attention() and concatenating, without the
/// copies. The mask broadcasts to (B, H, T_q, T_k); weights, if requested, are (B, H, T_q, T_k).
/// \param q queries \param k keys \param v values \param heads H (divides the channel counts)
/// \param options mask, causal, scale, weights
/// \return the attention output, heads packed in the channels (B, T_q, H·D_v)
Tensor head_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t heads,
                      const AttentionOptions& options = {});

/// \brief head_attention() reading Q, K and V from one packed (B, T, 3·H·D) tensor — channels
/// [0, C) are Q, [C, 2C) K, [2C, 3C) V, as a fused QKV projection produces them — and returning
/// (B, T, C). Saves splitting the projection (and, in backward, assembling its gradient).
/// \param qkv (B, T, 3C) \param heads H (divides C) \param options mask, causal, scale, weights
/// \return the attention output, heads packed in the channels (B, T, C)
Tensor head_attention_qkv(const Tensor& qkv, std::int64_t heads, const AttentionOptions& options = {});

// ---- operators ----------------------------------------------------------------------------------

/// \brief add(a, b). \param a left \param b right
/// \return the elementwise sum (the broadcast shape)
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
/// \brief sub(a, b). \param a left \param b right
/// \return the elementwise difference (the broadcast shape)
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
/// \brief mul(a, b). \param a left \param b right
/// \return the elementwise product (the broadcast shape)
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
/// \brief div(a, b). \param a left \param b right
/// \return the elementwise quotient (the broadcast shape)
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
/// \brief neg(x). \param x input
/// \return \f$ -x \f$ (x's shape)
inline Tensor operator-(const Tensor& x) { return neg(x); }
/// \brief add(x, s). \param x tensor \param s scalar
/// \return \f$ x + s \f$ (x's shape)
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
/// \brief add(x, s). \param s scalar \param x tensor
/// \return \f$ s + x \f$ (x's shape)
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
/// \brief add(x, -s). \param x tensor \param s scalar
/// \return \f$ x - s \f$ (x's shape)
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
/// \brief s − x. \param s scalar \param x tensor
/// \return \f$ s - x \f$ (x's shape)
inline Tensor operator-(double s, const Tensor& x) { return add(neg(x), s); }
/// \brief mul(x, s). \param x tensor \param s scalar
/// \return \f$ x \cdot s \f$ (x's shape)
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
/// \brief mul(x, s). \param s scalar \param x tensor
/// \return \f$ s \cdot x \f$ (x's shape)
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
/// \brief mul(x, 1/s). \param x tensor \param s scalar (non-zero)
/// \return \f$ x / s \f$ (x's shape)
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
/// \brief rdiv(s, x). \param s scalar \param x tensor
/// \return \f$ s / x \f$ (x's shape)
inline Tensor operator/(double s, const Tensor& x) { return rdiv(s, x); }

}  // namespace qkv
