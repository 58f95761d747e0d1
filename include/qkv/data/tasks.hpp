/// \file
/// \brief Toy sequence tasks (copy, reverse, sort, add, recall), their vocabularies, train and
/// held-out splits, batches for next-token training, and a character-level text corpus.
///
/// A reader learns here how the data of a small transformer experiment is made. Every example is
/// one *decoder-only* sequence of tokens: the problem (the prompt), a separator `=`, then the
/// answer, for instance `reverse` of 4 digits gives `3141=1413`. The model reads the whole
/// sequence and is trained to predict the next token, but the loss counts only the answer tokens:
/// predicting the random digits of the prompt is impossible and would only add noise. At test
/// time the model is given the prompt and the separator and must generate the answer; an answer
/// counts as right only when every one of its tokens is (exact match).
///
/// Two rules make the measurements honest. Everything is drawn from a seeded qkv::Generator, so a
/// seed gives the same batches every run. And the held-out problems never appear in training:
/// whether a problem is held out is a fixed function of its prompt text (a hash, about 10% of all
/// problems), so "the model reaches 100% on held-out data" means it learned the rule, not the
/// examples.
///
/// Vocabularies (the token id is the position in the string; digits always have ids 0–9, so the
/// id of a digit is its value):
///
/// | task                  | symbols, in id order                        | size |
/// |-----------------------|---------------------------------------------|------|
/// | copy, reverse, sort   | `0123456789=_`                              | 12   |
/// | add                   | `0123456789+=_`                             | 13   |
/// | recall                | `0123456789abcdefghijklmnopqrstuvwxyz?=_`   | 39   |
///
/// `=` is the separator (Vocab::sep()) and `_` the padding token (Vocab::pad()), which the
/// generators never emit: all examples of a task have the same length, so nothing needs padding.
/// data/README.md describes the same formats for readers of the sample files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qkv/core/generator.hpp"
#include "qkv/core/tensor.hpp"

namespace qkv::data {

// ---- text and vocabularies ----------------------------------------------------------------------

/// The separator between prompt and answer in every task.
inline constexpr char kSep = '=';
/// The padding token of the task vocabularies (never produced by the generators).
inline constexpr char kPad = '_';
/// The target value that cross_entropy skips: the positions whose loss does not count.
inline constexpr std::int32_t kIgnoreIndex = -100;

/// \brief Decode UTF-8 text into Unicode code points. Throws qkv::Error naming \p who and the
/// byte offset on malformed input (bad lead byte, truncated sequence, overlong form, surrogate).
/// \param text UTF-8 (plain ASCII is valid UTF-8)
/// \param who the function name to start an error message with
/// \return the code points, one per character
std::u32string decode_utf8(std::string_view text, std::string_view who = "decode_utf8");
/// \brief Encode Unicode code points as UTF-8.
/// \param code_points the characters
/// \return the UTF-8 text
std::string encode_utf8(std::u32string_view code_points);

/// \brief A character-level vocabulary: each token is one Unicode character and its id is its
/// position in the symbol list. Tasks and corpora each build their own.
class Vocab {
public:
    /// An empty vocabulary.
    Vocab() = default;
    /// \brief One token per character of \p symbols, in order. Throws on a repeated character.
    /// \param symbols UTF-8 text, e.g. `"0123456789=_"`
    explicit Vocab(std::string_view symbols);

    /// \brief Number of tokens (V, the size of the model's embedding table and output layer).
    /// \return V, the number of tokens
    std::int64_t size() const { return static_cast<std::int64_t>(symbols_.size()); }
    /// \brief All tokens as one UTF-8 string, in id order.
    /// \return the symbols, token i being the i-th character
    std::string symbols() const { return encode_utf8(symbols_); }
    /// \brief True when \p c is a token of this vocabulary.
    /// \param c a Unicode code point
    /// \return whether \p c has an id
    bool contains(char32_t c) const { return ids_.count(c) != 0; }
    /// \brief The id of character \p c. Throws qkv::Error when \p c is not in the vocabulary.
    /// \param c a Unicode code point (a plain `char` such as `'='` converts)
    /// \return the id of \p c, in [0, size())
    std::int32_t id(char32_t c) const;
    /// \brief The token with id \p id as UTF-8 text. Throws when \p id is out of range.
    /// \param id a token id in [0, size())
    /// \return the character with id \p id, as UTF-8
    std::string token(std::int32_t id) const;
    /// \brief Id of the separator `=`; throws if this vocabulary has none (corpus vocabularies).
    /// \return the id of `=`
    std::int32_t sep() const { return id(kSep); }
    /// \brief Id of the padding token `_`; throws if this vocabulary has none (corpus vocabularies).
    /// \return the id of `_`
    std::int32_t pad() const { return id(kPad); }

    /// \brief Token ids of \p text, one per character. Throws, naming the character and its
    /// position, when a character is not in the vocabulary.
    /// \param text UTF-8 text
    /// \return one id per character of \p text
    std::vector<std::int32_t> encode(std::string_view text) const;
    /// \brief The text of a list of token ids. Throws, naming the position, on an id outside
    /// [0, size()).
    /// \param ids token ids
    /// \return the UTF-8 text, one character per id
    std::string decode(const std::vector<std::int32_t>& ids) const;

private:
    std::u32string symbols_;
    std::unordered_map<char32_t, std::int32_t> ids_;
};

// ---- examples and splits ------------------------------------------------------------------------

/// One training or evaluation sequence: prompt tokens, the separator, the answer tokens.
struct Example {
    /// The full sequence (T = Task::sequence_length() tokens).
    std::vector<std::int32_t> tokens;
    /// Number of prompt tokens, *not* counting the separator; the separator sits at this index.
    std::int64_t prompt_length = 0;

    /// \brief Index of the first answer token (prompt_length + 1).
    /// \return prompt_length + 1
    std::int64_t answer_start() const { return prompt_length + 1; }
    /// \brief What a model is given at test time: the prompt and the separator.
    /// \return the first answer_start() tokens
    std::vector<std::int32_t> context() const;
    /// \brief The answer tokens, which the model must generate.
    /// \return the tokens from answer_start() to the end
    std::vector<std::int32_t> answer() const;
};

/// The two halves of a task's problem space. They never share a prompt.
enum class Split {
    train,    ///< ~90% of the problems: what the model learns from
    heldout,  ///< ~10% of the problems: what accuracy is measured on
};

/// \brief Name of a split ("train" or "heldout"), for messages.
/// \param split the split
/// \return "train" or "heldout"
std::string_view split_name(Split split);

/// \brief The split a problem belongs to, decided by its prompt text alone: held out when
/// `splitmix64_mix(fnv1a64(prompt)) % 10 == 0`. Fixed forever, so held-out problems stay
/// held out across runs, seeds and programs (data/README.md gives the exact recipe).
/// \param prompt the prompt text without the separator, e.g. `"045+678"`
/// \return Split::heldout for about 10% of the prompts, Split::train for the others
Split split_of(std::string_view prompt);

// ---- tasks --------------------------------------------------------------------------------------

/// \brief Which task to build. What `length` means depends on the task:
/// digits for copy, reverse and sort; digits per operand for add; key–value pairs for recall.
struct TaskConfig {
    /// One of task_names(): "copy", "reverse", "sort", "add", "recall".
    std::string name = "reverse";
    /// The task's size parameter (see above); 0 means the task's default_length().
    std::int64_t length = 0;
    /// add only: answer digits least significant first (true, easier for a left-to-right model)
    /// or in the usual order (false). The other tasks ignore it.
    bool reversed = true;
};

/// \brief The names make_task() accepts, in the order a tutorial introduces them.
/// \return the task names: "copy", "reverse", "sort", "add", "recall"
const std::vector<std::string>& task_names();

/// \brief The length a task uses when TaskConfig::length is 0 (reverse 16, sort 6, add 3, ...).
/// Throws qkv::Error, listing the valid names, on an unknown name.
/// \param name a task name
/// \return the default size parameter of task \p name
std::int64_t default_length(std::string_view name);

namespace detail {
struct TaskKind;
}  // namespace detail

/// \brief A toy task of fixed size: its vocabulary, its sequence layout, and how to draw and
/// solve its problems. Made by make_task(). A Task is a small value: copy it freely
/// (`Task t = *make_task(config);`), and share it between threads (every method is const;
/// randomness comes from the Generator you pass). Keep the Task alive while you hold a reference
/// to its vocab().
class Task {
public:
    /// \brief The task's name, e.g. "reverse".
    /// \return the name, one of task_names()
    const std::string& name() const { return config_.name; }
    /// \brief The configuration it was made from, with length resolved (never 0).
    /// \return the resolved configuration
    const TaskConfig& config() const { return config_; }
    /// \brief The task's size parameter (digits, digits per operand, or pairs).
    /// \return the resolved size parameter (≥ 1)
    std::int64_t length() const { return config_.length; }
    /// \brief Its vocabulary (see the table at the top of this file).
    /// \return the vocabulary, owned by this task
    const Vocab& vocab() const { return vocab_; }
    /// \brief Number of prompt tokens (without the separator).
    /// \return the number of prompt tokens
    std::int64_t prompt_length() const { return prompt_length_; }
    /// \brief Number of answer tokens.
    /// \return the number of answer tokens
    std::int64_t answer_length() const { return answer_length_; }
    /// \brief T, the length of every example: prompt + separator + answer.
    /// \return T = prompt_length() + 1 + answer_length()
    std::int64_t sequence_length() const { return prompt_length_ + 1 + answer_length_; }
    /// \brief One line for humans, e.g. "reverse 16 digits: write the digits in reverse order (e.g. ...)".
    /// \return the description, without a trailing newline
    std::string description() const;
    /// \brief How many distinct prompts exist (as a double: 10^32 does not fit an integer).
    /// \return the number of distinct prompts, both splits together
    double problem_count() const;

    /// \brief A uniformly random prompt from the whole problem space, as text (either split).
    /// \param gen the random generator
    /// \return a prompt of prompt_length() characters, without the separator
    std::string draw_prompt(Generator& gen) const;
    /// \brief The correct answer of a prompt, as text. Throws if \p prompt is malformed.
    /// \param prompt prompt text without the separator, e.g. `"045+678"`
    /// \return the answer text (answer_length() characters)
    std::string solve(std::string_view prompt) const;
    /// \brief The full example of a prompt (prompt, separator, solved answer). Throws qkv::Error
    /// explaining what is wrong when \p prompt is not a valid prompt of this task.
    /// \param prompt prompt text without the separator
    /// \return the example, sequence_length() tokens
    Example example(std::string_view prompt) const;
    /// \brief A random example of \p split: draws prompts until one lies in that split.
    /// \param split train or heldout
    /// \param gen the random generator
    /// \return an example whose prompt lies in \p split
    Example sample(Split split, Generator& gen) const;

    /// \cond INTERNAL
    Task(TaskConfig config, const detail::TaskKind& kind);
    /// \endcond

private:
    TaskConfig config_;
    const detail::TaskKind* kind_;
    Vocab vocab_;
    std::int64_t prompt_length_ = 0;
    std::int64_t answer_length_ = 0;
};

/// \brief Build a task. Throws qkv::Error on an unknown name (the message lists the valid ones),
/// on a negative or too large length, and when the length leaves fewer than 1000 distinct
/// problems — too few for a held-out split to mean anything (e.g. reverse of 2 digits).
/// \param config name, length (0 = default) and options
/// \return the task (never null)
std::unique_ptr<Task> make_task(const TaskConfig& config);

// ---- batches and evaluation sets ----------------------------------------------------------------

/// \brief A batch for next-token training.
///
/// For a task, each row is one example of T tokens: `inputs` holds tokens 0..T-2 and `targets`
/// holds tokens 1..T-1 (the next token at every position), with every target that is not an
/// answer token replaced by kIgnoreIndex, so `cross_entropy(logits, targets)` scores only the
/// answer. For a corpus every target counts.
struct Batch {
    /// (B, T−1) i32 token ids fed to the model (for a corpus: (B, T)).
    Tensor inputs;
    /// (B, T−1) i32 next-token targets, or kIgnoreIndex where the loss must not count.
    Tensor targets;
    /// The answer tokens of each row (empty for corpus batches).
    std::vector<std::vector<std::int32_t>> answers;
};

/// \brief Stack examples of equal length into a training batch (see Batch). Throws on an empty
/// list or on examples of different lengths or prompt lengths.
/// \param examples the rows
/// \return the batch: inputs and targets (B, T−1) i32, and each row's answer tokens
Batch batch_from_examples(const std::vector<Example>& examples);

/// \brief B random examples of one split, as a Batch. Rows may repeat (they are independent draws).
/// \param task the task
/// \param batch_size B (≥ 1)
/// \param split train or heldout
/// \param gen the random generator (advanced)
/// \return the batch: inputs and targets (B, T−1) i32, and each row's answer tokens
Batch make_batch(const Task& task, std::int64_t batch_size, Split split, Generator& gen);

/// \brief A fixed evaluation set: \p n *distinct* held-out examples, the same for the same
/// (task, n, seed). Throws when \p n is more than half the expected number of held-out problems
/// (problem_count() / 20), so the set never scrapes the bottom of a small problem space.
/// \param task the task
/// \param n number of examples (≥ 0)
/// \param seed seed of the Generator that draws them
/// \return \p n distinct held-out examples, in the order they were drawn
std::vector<Example> heldout_set(const Task& task, std::int64_t n, std::uint64_t seed);

/// \brief True when the predicted answer equals the example's answer token for token (and has
/// the same length).
/// \param predicted_answer the generated answer tokens (without prompt and separator)
/// \param example the example with the right answer
/// \return whether \p predicted_answer equals example.answer()
bool exact_match(const std::vector<std::int32_t>& predicted_answer, const Example& example);

// ---- a character-level corpus -------------------------------------------------------------------

/// A text encoded character by character, split into a training part and a validation part.
struct Corpus {
    /// The file it came from (empty for make_corpus()).
    std::string path;
    /// Every distinct character of the text, sorted by code point.
    Vocab vocab;
    /// Token ids of the first 90% of the characters.
    std::vector<std::int32_t> train;
    /// Token ids of the last 10% of the characters.
    std::vector<std::int32_t> validation;
};

/// \brief Build a corpus from text: vocabulary of its characters sorted by code point, then the
/// first 90% of the characters for training and the rest for validation. Throws on empty text,
/// invalid UTF-8, or text so short that either part would have fewer than 2 characters.
/// \param text UTF-8 text
/// \param who the name to start error messages with
/// \return the corpus, with an empty path
Corpus make_corpus(std::string_view text, std::string_view who = "make_corpus");

/// \brief Read a UTF-8 (or ASCII) text file and make_corpus() it. Throws qkv::Error naming the
/// path when the file is missing, unreadable, empty or not UTF-8.
/// \param path the file, e.g. `data_file("corpus.txt")`
/// \return the corpus, with Corpus::path set to \p path
Corpus load_corpus(const std::string& path);

/// \brief B random windows of T characters from one part of the corpus (Split::train = the first
/// 90%, Split::heldout = the validation 10%): `inputs` (B, T) and `targets` (B, T), the next
/// character at each position. Throws when that part is shorter than T + 1 characters.
/// \param corpus the corpus
/// \param batch_size B (≥ 1)
/// \param context T (≥ 1)
/// \param split which part to draw from
/// \param gen the random generator (advanced)
/// \return the batch: inputs and targets (B, T) i32, and no answers
Batch corpus_batch(const Corpus& corpus, std::int64_t batch_size, std::int64_t context, Split split,
                   Generator& gen);

/// \brief Path of a file shipped in qkv's data/ directory, e.g. `data_file("corpus.txt")`.
/// Looks in `$QKV_DATA_DIR`, then the source tree qkv was built from, then the installed
/// share/qkv/data; throws qkv::Error listing the places it looked when none has the file.
/// \param name file name relative to data/
/// \return the path of the first existing file
std::string data_file(std::string_view name);

}  // namespace qkv::data
