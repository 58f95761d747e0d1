/// \file
/// \brief Training a GPT language model on a text of your own: the loop behind `qkv train --text`.
///
/// A reader learns here everything that changes when the data is a real text instead of a toy task.
/// The text is cut once, by position: the first 90% trains, the last 10% validates (random windows
/// would overlap and leak validation text into training). A tokenizer turns both parts into ids —
/// characters, or byte-level BPE learned from the training part. Each step draws random windows of
/// `context` tokens; the target at every position is the next token. The learning rate warms up
/// linearly and then follows a cosine down to a floor; gradients are clipped by their global norm.
/// There is no exact answer to count, so progress is the validation loss — the mean cross-entropy
/// per token on fixed windows of the validation part — with its perplexity e^loss and, comparable
/// between tokenizers, bits per byte of text.
///
/// The checkpoint carries the tokenizer and the model's configuration in its metadata
/// (text_metadata()), so load_text_model() rebuilds a model for sampling from the file alone, and
/// TextTrainer::load() resumes a run (given the same text) exactly where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/data/tokenizer.hpp"
#include "qkv/error.hpp"
#include "qkv/io/checkpoint.hpp"
#include "qkv/nn/transformer.hpp"
#include "qkv/optim/optim.hpp"
#include "qkv/train/memory.hpp"
#include "qkv/train/run_guard.hpp"

namespace qkv {

/// \brief The fraction of the text (at its end) that is held out for validation: 10%.
inline constexpr double kValidationFraction = 0.1;

/// \brief Everything that defines a language-model run on a text. The defaults are the demo that
/// `qkv train --text data/corpus.txt` runs; TextTrainConfig::baby() is nanoGPT's CPU recipe.
struct TextTrainConfig {
    std::string tokenizer = "char";  ///< "char" (one token per character) or "bpe" (byte-level BPE)
    std::int64_t vocab_size = 512;   ///< bpe only: 256 bytes + merges (the end-of-text token comes on top)
    std::int64_t layers = 3;         ///< transformer blocks
    std::int64_t heads = 4;          ///< attention heads
    std::int64_t dim = 96;           ///< d_model
    std::int64_t context = 64;       ///< tokens per window (the model's block size)
    std::int64_t hidden = 0;         ///< MLP width (0: 4·dim); set from the model by TextTrainer::fine_tune()
    bool tanh_gelu = false;          ///< tanh GELU (GPT-2); set from the model by fine_tune()
    double ln_eps = 1e-5;            ///< layer norm ε; set from the model by fine_tune()
    bool tie_weights = false;        ///< head tied to the token embedding (GPT-2); set by fine_tune()
    std::int64_t batch = 16;         ///< windows per step
    std::int64_t max_steps = 1500;   ///< steps
    double lr = 2e-3;                ///< peak learning rate (AdamW)
    double min_lr = 2e-4;            ///< floor of the cosine decay
    std::int64_t warmup = 100;       ///< steps of linear warm-up
    bool cosine = true;              ///< warm-up + cosine decay (false: constant lr)
    double weight_decay = 0.1;       ///< AdamW decoupled weight decay (every parameter)
    double beta2 = 0.99;             ///< AdamW β₂ (nanoGPT uses 0.99 for its small models)
    double dropout = 0.1;            ///< dropout after the embeddings and in every residual branch
    double grad_clip = 1.0;          ///< clip the gradients' global norm to this (0: no clipping)
    std::uint64_t seed = 0;          ///< model initialisation, batches and dropout
    std::int64_t eval_every = 100;   ///< steps between evaluations (and at the last step)
    std::int64_t eval_tokens = 16384;  ///< validation tokens per evaluation, at most (see TextTrainer::evaluate())
    std::int64_t log_every = 10;     ///< steps between points of the training curve

    /// \brief nanoGPT's CPU "baby" recipe (README, "I only have a macbook"): 4 layers, 4 heads,
    /// d_model 128, context 64, batch 12, 2000 steps, lr 1e-3 decaying to 1e-4 over the 2000 steps
    /// after 100 warm-up steps, no dropout, with the settings of its config/train_shakespeare_char.py
    /// (β₂ 0.99, weight decay 0.1, gradient clipping at 1.0).
    /// \return the recipe (character tokenizer, seed 0)
    static TextTrainConfig baby();
};

/// One evaluation during training.
struct TextEvalPoint {
    std::int64_t step = 0;          ///< steps completed
    double train_loss = 0;          ///< mean training loss since the previous evaluation
    double validation_loss = 0;     ///< mean cross-entropy per token on the validation windows
    double bits_per_byte = 0;       ///< validation_loss in bits per byte of text (comparable across tokenizers)
    double lr = 0;                  ///< learning rate of the last step
    double seconds = 0;             ///< wall time since the start of run() (evaluations included)
};

/// \brief One point of the training curve: every TextTrainConfig::log_every steps, at every
/// evaluation and at the last step.
struct TextCurvePoint {
    std::int64_t step = 0;  ///< steps completed
    double train_loss = 0;  ///< mean training loss of the steps since the previous point
    /// validation loss when an evaluation ran at this step, else NaN
    double validation_loss = std::numeric_limits<double>::quiet_NaN();
    double lr = 0;          ///< learning rate of the last step
    double seconds = 0;     ///< wall time since the start of run()
};

/// \brief A text cut into training and validation ids by a tokenizer (see TextTrainer).
struct TokenizedText {
    std::unique_ptr<data::Tokenizer> tokenizer;  ///< the tokenizer (learned from the text)
    std::vector<std::int32_t> train;             ///< ids of the first 90%
    std::vector<std::int32_t> validation;        ///< ids of the last 10%
    std::int64_t train_bytes = 0;                ///< bytes of text behind `train`
    std::int64_t validation_bytes = 0;           ///< bytes of text behind `validation`
};

/// \brief Thrown by tokenize_text() when the BPE vocabulary size asked for is more than the text can
/// support (a setting that does not fit the text, which `qkv train` reports as bad command-line use).
struct VocabSizeError : Error {
    using Error::Error;
};

/// \brief Split \p text (last kValidationFraction for validation, at a character boundary when the
/// text is UTF-8) and tokenize it: with `char`, every character of the whole text is a token (so
/// the validation part can be encoded); with `bpe`, BpeTokenizer::train() learns the merges from the
/// training part only. Special-token texts such as `<|endoftext|>` become their tokens. Throws
/// qkv::Error naming \p source: an empty text, an invalid tokenizer name, text that is not UTF-8 for
/// `char`, or a part with fewer than context + 1 tokens (one window); VocabSizeError when the
/// training part cannot support the BPE vocabulary size.
/// \param text the whole text (any bytes for bpe, UTF-8 for char)
/// \param config tokenizer, vocab_size and context are used
/// \param source name of the text for messages (e.g. its path)
/// \param tokenizer when given, use it instead of training one (resuming a run)
/// \return the tokenizer and the two parts' ids
TokenizedText tokenize_text(std::string_view text, const TextTrainConfig& config, std::string_view source,
                            std::unique_ptr<data::Tokenizer> tokenizer = nullptr);

/// \brief A GPT configuration as checkpoint metadata: `model.vocab`, `model.block_size`, `model.dim`,
/// `model.heads`, `model.layers`, `model.hidden`, `model.dropout`, `model.seed`, and GPT-2's options
/// when set: `model.tanh_gelu`, `model.ln_eps`, `model.tie_weights`.
/// \param model the model's configuration \return the metadata entries
io::Metadata gpt_metadata(const nn::GPTConfig& model);

/// \brief The GPT configuration and tokenizer of a text model, as checkpoint metadata: gpt_metadata()
/// and `tokenizer` (data::Tokenizer::serialize()).
/// \param model the model's configuration \param tokenizer its tokenizer \return the metadata entries
io::Metadata text_metadata(const nn::GPTConfig& model, const data::Tokenizer& tokenizer);

/// \brief True when \p metadata describes a text model (it has a `tokenizer` entry).
/// \param metadata a checkpoint's metadata \return whether it carries a tokenizer
bool is_text_checkpoint(const io::Metadata& metadata);

/// A text model loaded for generation.
struct TextModel {
    std::unique_ptr<nn::GPT> model;              ///< the GPT, in eval mode
    std::unique_ptr<data::Tokenizer> tokenizer;  ///< its tokenizer
    std::int64_t steps = 0;                      ///< training steps it had when saved (0 if unknown)
};

/// \brief Load a checkpoint saved by `qkv train --text` for generation: the model configuration and
/// tokenizer come from its metadata, then the weights. The file is untrusted: every metadata value
/// is checked (ranges; the parameter count it implies against the tensors the file holds, before
/// the model is built), and a checkpoint without a tokenizer is a qkv::Error that says so.
/// \param path the checkpoint \return the model and tokenizer
TextModel load_text_model(const std::string& path);

/// \brief A GPT language model, its text, optimizer and progress, with one method per part of the
/// loop — the same shape as TaskTrainer, so the same run-safety pieces fit both.
class TextTrainer {
public:
    /// \brief Tokenize \p text (tokenize_text()) and build a fresh model and optimizer. Throws
    /// qkv::Error on bad settings or text.
    /// \param config the run's settings \param text the whole text \param source its name (path) for
    /// messages and the checkpoint
    TextTrainer(const TextTrainConfig& config, std::string_view text, std::string source);
    /// \brief Resume a run saved by save(): settings and tokenizer from the checkpoint's metadata,
    /// then the model, optimizer, step and RNG state. \p text must be the text the run trained on
    /// (checked by its size and hash). \param path checkpoint file \param text the training text
    /// \param source its name, for messages
    /// \return the restored trainer (never null), ready to continue at steps_done()
    static std::unique_ptr<TextTrainer> load(const std::string& path, std::string_view text, std::string source);
    /// \brief Fine-tune: a new run on \p text that starts from the weights of the text model in
    /// \p init (a checkpoint of `qkv train --text`, or one `qkv import` made) instead of random ones.
    /// The model's shape (layers, heads, dim, MLP width, context) and the tokenizer are the
    /// checkpoint's — the tokenizer is not learned again, so the ids mean what they meant —; the
    /// training settings (steps, learning rate and schedule, dropout, batch, ...) are \p config's, and
    /// the optimizer starts fresh. Throws qkv::Error when \p init is not a text model, or the text
    /// cannot be encoded with its tokenizer (a character the character tokenizer never saw).
    /// \param init the checkpoint to start from \param config the run's training settings (its model
    /// and tokenizer fields are replaced by the checkpoint's) \param text the whole text
    /// \param source its name, for messages \return the trainer (never null), at step 0
    static std::unique_ptr<TextTrainer> fine_tune(const std::string& init, TextTrainConfig config, std::string_view text,
                                                  std::string source);
    /// \brief A new step budget, e.g. to train a resumed run for longer. The cosine schedule then ends
    /// at the new budget (the steps already done keep the rates they had). Throws qkv::Error unless
    /// \p steps is in [1, 10⁹]. \param steps the new max_steps
    void set_max_steps(std::int64_t steps);
    /// \brief Save model, optimizer, step, RNG state, settings and tokenizer (atomically).
    /// \param path checkpoint file (safetensors)
    void save(const std::string& path) const;

    /// \brief The learning rate of step \p step (from 0): warm-up then cosine, or constant.
    /// \param step a step index \return the learning rate
    double lr_at(std::int64_t step) const;
    /// \brief One training step: set the learning rate, draw a batch of random windows, forward,
    /// loss, backward, clip, AdamW. When the loss or a gradient is not finite, throws TrainingDiverged
    /// before the update (the weights stay as they were), naming the op and the layer where the first
    /// NaN or infinity appeared. \return the batch's mean loss, before the update
    double step();
    /// \brief Mean cross-entropy per token on the validation windows, in eval mode (no dropout).
    ///
    /// The windows are fixed, so every evaluation — and another program that follows this recipe,
    /// such as tests/bench/bench_text_torch.py — measures the same thing: with n validation tokens
    /// and T = context, K = min(⌊(n − 1)/T⌋, max(1, ⌊eval_tokens/T⌋)) windows start at
    /// s_k = ⌊k (n − 1 − T)/(K − 1)⌋ (s_0 = 0 when K = 1), each predicting its T next tokens; all of
    /// the validation text when it fits in eval_tokens, evenly spread samples of it otherwise.
    /// \return the mean loss over the K·T predicted tokens
    double evaluate();
    /// \brief Train until max_steps, evaluating every eval_every steps and at the last step.
    /// \param on_eval called after every evaluation (progress output); may be empty
    /// \param on_step called after every step with (step, loss); may be empty
    /// \param guard when given: periodic checkpoints (RunGuard::after_step) and Ctrl-C / SIGTERM
    /// ending the run after the current step, saved (see qkv/train/run_guard.hpp)
    /// \return the evaluations made by this call, in order (none if max_steps was already reached)
    std::vector<TextEvalPoint> run(const std::function<void(const TextEvalPoint&)>& on_eval = {},
                                   const std::function<void(std::int64_t, double)>& on_step = {},
                                   RunGuard* guard = nullptr);
    /// \brief The training curve of the whole run: saved in checkpoints, so a resumed run's
    /// curve continues the old one.
    /// \return the points in step order
    const std::vector<TextCurvePoint>& curve() const { return curve_; }

    /// \brief The settings. \return the configuration the run was built with (or loaded with)
    const TextTrainConfig& config() const { return cfg_; }
    /// \brief The model. \return the model, owned by the trainer
    nn::GPT& model() { return *model_; }
    /// \brief The tokenizer. \return the tokenizer, owned by the trainer
    const data::Tokenizer& tokenizer() const { return *data_.tokenizer; }
    /// \brief The tokenized text. \return the training and validation ids and sizes
    const TokenizedText& text() const { return data_; }
    /// \brief Steps completed so far (continues across save/load). \return the number of completed steps
    std::int64_t steps_done() const { return state_.step; }
    /// \brief Seconds spent in step() by this trainer (training only, no evaluation): for tokens/s.
    /// \return the seconds
    double step_seconds() const { return step_seconds_; }
    /// \brief Validation loss → bits per byte of validation text. \param loss a validation loss (nats
    /// per token) \return loss · (validation tokens / validation bytes) / ln 2
    double bits_per_byte(double loss) const;

private:
    TextTrainer(const TextTrainConfig& config, std::string source);  // for load(): members filled in there
    TextTrainer(const TextTrainConfig& config, std::string_view text, std::string source,
                std::unique_ptr<data::Tokenizer> tokenizer);  // null: learn one from the text
    TextTrainConfig cfg_;
    TokenizedText data_;
    std::string source_;
    std::string init_;  // the checkpoint fine_tune() started from ("" for a fresh run)
    std::uint64_t text_hash_ = 0;
    std::int64_t text_bytes_ = 0;
    std::unique_ptr<nn::GPT> model_;
    std::vector<NamedTensor> params_;  // the model's parameters with their names (for NaN reports)
    std::unique_ptr<optim::AdamW> opt_;
    io::TrainState state_;
    std::vector<TextCurvePoint> curve_;
    double step_seconds_ = 0;
    MemoryEstimate memory_;            // what training this model needs, for out-of-memory messages
    double step_unguarded();
};

}  // namespace qkv
