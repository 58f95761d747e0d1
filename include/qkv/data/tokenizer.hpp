/// \file
/// \brief Tokenizers: text ↔ token ids. Character level, and byte-level BPE (byte-pair encoding)
/// that learns its vocabulary from a text, GPT-2 style.
///
/// A reader learns here what a language model actually reads. A model sees integers, not text: a
/// tokenizer cuts text into pieces from a fixed vocabulary and numbers them. Two answers to "which
/// pieces":
///
/// - **Characters** (CharTokenizer): every distinct character of the training text is a token. The
///   vocabulary is tiny (60 for data/corpus.txt), but sequences are long — one token per character —
///   and a character the text never showed cannot be encoded at all.
/// - **Byte-level BPE** (BpeTokenizer): start from the 256 possible bytes, so *any* input can be
///   encoded (emoji, Korean, invalid UTF-8, a binary file), then repeatedly glue the most frequent
///   adjacent pair of tokens into a new token (Sennrich et al. 2016; GPT-2, Radford et al. 2019).
///   Each merge adds one token to the vocabulary and shortens the text; common words become one
///   token, rare words stay in pieces, and nothing is ever out of vocabulary.
///
/// Before merging, BPE cuts the text into *chunks* — words with their leading space, runs of
/// digits, runs of punctuation, runs of whitespace, English contractions — and merges only inside a
/// chunk, so that "dog", "dog." and "dog!" share the token " dog" instead of learning three
/// (split_gpt2(), which follows GPT-2's rule, written out by hand below).
///
/// Both tokenizers are one interface, Tokenizer, and serialize to a short text (serialize(),
/// parse()) — what `qkv train --text` stores in a checkpoint's metadata so that `qkv sample` needs
/// nothing else. parse() treats its input as untrusted: any malformed text is a qkv::Error, never a
/// crash or a huge allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qkv::data {

/// The end-of-text special token of byte-level BPE (GPT-2's name for it).
inline constexpr std::string_view kEndOfText = "<|endoftext|>";

/// \brief Longest chunk, in bytes, that the pre-split produces. A longer run of letters, digits,
/// punctuation or whitespace (a URL, a line of `=====`, a binary blob) is cut after at most this many
/// bytes, at a character boundary. Real words are far shorter, so merges do not notice; but the cap
/// keeps training and encoding linear in the input even for adversarial files (merging inside one
/// chunk of n bytes costs O(n²)).
inline constexpr std::size_t kMaxChunkBytes = 64;

/// \brief Longest token, in bytes, of a BPE tokenizer read from another program's files (GPT-2's
/// merges had no chunk cap; its tokens are far shorter than this). A sanity bound for parsing.
inline constexpr std::size_t kMaxImportedTokenBytes = 4096;

/// \brief The largest vocabulary a BPE tokenizer may have (bytes + merges): a sanity bound that keeps
/// a corrupt or hostile tokenizer file from asking for gigabytes (GPT-2 has 50 257 tokens).
inline constexpr std::int64_t kMaxBpeVocab = 1'000'000;

/// \brief The largest character vocabulary: a sanity bound for parsing (Unicode has 1 114 112 code
/// points).
inline constexpr std::int64_t kMaxCharVocab = 1'114'112;

// ---- the pre-split ------------------------------------------------------------------------------

/// \brief What kind of character a code point is, for the pre-split.
enum class CharClass : std::uint8_t {
    letter,  ///< GPT-2's \\p{L}
    number,  ///< GPT-2's \\p{N}
    space,   ///< GPT-2's \\s
    other,   ///< everything else: punctuation, symbols, emoji, marks, controls, invalid bytes
};

/// \brief The class of a Unicode code point. Exact for ASCII and Latin-1 (U+0000–U+00FF); above,
/// a table of the common blocks of spaces, digits, punctuation, symbols, emoji and combining marks,
/// and *letter* for every other code point (true for the bulk of assigned code points: CJK, Hangul,
/// Cyrillic, Greek, Arabic, Hebrew, Indic letters). Where the table is coarse it differs from full
/// Unicode tables (for instance Indic vowel signs count as letters, so Hindi words stay whole where
/// GPT-2's regex cuts them). The class only decides where chunks end — never whether a text
/// round-trips.
/// \param c a code point
/// \return its class
CharClass char_class(char32_t c);

/// \brief How a BPE tokenizer cuts text into chunks before merging.
enum class PreSplit : std::uint8_t {
    gpt2,  ///< split_gpt2(): words, numbers, punctuation, whitespace, contractions
    none,  ///< no split (as minbpe's BasicTokenizer), except pieces of at most kMaxChunkBytes
};

/// \brief Name of a pre-split ("gpt2" or "none"), as serialized.
/// \param split the pre-split \return its name
std::string_view pre_split_name(PreSplit split);

/// \brief Cut text into chunks by GPT-2's rule. GPT-2 writes it as one regular expression,
/// \code{.unparsed}
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// \endcode
/// tried left to right at each position; split_gpt2() does the same by hand:
/// 1. an English contraction — an apostrophe and `s`, `t`, `re`, `ve`, `m`, `ll` or `d` (lower case);
/// 2. else an optional single space (U+0020) followed by a run of letters, or of numbers, or of
///    "other" characters (punctuation and symbols): so a word carries its leading space (" dog");
/// 3. else a run of whitespace — but when a non-space follows, all of it except its last character,
///    which is left to start the next chunk (so "␣␣dog" is "␣" and "␣dog"); a single whitespace
///    character before a non-space is a chunk of its own ("\n", "dog").
///
/// Chunks are byte ranges of \p text: concatenated, they give \p text back exactly. Bytes that are
/// not valid UTF-8 count as one "other" character each. Chunks are at most kMaxChunkBytes long.
/// \param text any bytes
/// \return the chunks, in order, as views into \p text
std::vector<std::string_view> split_gpt2(std::string_view text);

/// \brief Chunks of \p text under \p split (split_gpt2(), or fixed pieces of at most
/// kMaxChunkBytes for PreSplit::none). \param text any bytes \param split the rule
/// \return the chunks, in order, as views into \p text
std::vector<std::string_view> pre_split(std::string_view text, PreSplit split);

// ---- the interface --------------------------------------------------------------------------------

/// \brief A tokenizer: text ↔ token ids in [0, vocab_size()). Implemented by CharTokenizer and
/// BpeTokenizer; parse() and load() rebuild either from its serialized form.
///
/// Text is bytes (`std::string_view`): UTF-8 for the character tokenizer, anything for BPE.
/// decode() returns bytes too, which for BPE may be invalid UTF-8 when the ids are (a token can
/// hold part of a character). Every method is const and keeps no hidden state, so one tokenizer can
/// be shared between threads.
class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    /// \brief The kind, as serialized: "char" or "bpe".
    /// \return the kind's name
    virtual std::string_view kind() const = 0;
    /// \brief Number of tokens V (the model's embedding rows): ids are in [0, V).
    /// \return V, special tokens included
    virtual std::int64_t vocab_size() const = 0;
    /// \brief Token ids of ordinary text. Special-token texts such as `<|endoftext|>` are encoded
    /// as ordinary text, never as the special token (see encode_with_specials()). Throws
    /// qkv::Error when the text cannot be encoded (the character tokenizer: invalid UTF-8, or a
    /// character not in its vocabulary, naming it and its position).
    /// \param text the text \return its token ids
    virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
    /// \brief Token ids of text in which the special tokens' texts (e.g. `<|endoftext|>`) stand for
    /// the special tokens themselves; the rest is encode()d. \param text the text
    /// \return its token ids
    std::vector<std::int32_t> encode_with_specials(std::string_view text) const;
    /// \brief The bytes of one token (a special token gives its text). Throws qkv::Error when \p id
    /// is outside [0, vocab_size()).
    /// \param id a token id \return the token's bytes
    virtual std::string token_bytes(std::int32_t id) const = 0;
    /// \brief The text of a list of ids: their token_bytes(), concatenated. Throws qkv::Error, naming
    /// the position, on an id outside [0, vocab_size()).
    /// \param ids token ids \return the bytes
    std::string decode(const std::vector<std::int32_t>& ids) const;
    /// \brief The special tokens: (text, id) pairs, in id order (none for the character tokenizer).
    /// \return the special tokens
    virtual std::vector<std::pair<std::string, std::int32_t>> specials() const = 0;
    /// \brief Id of the end-of-text token `<|endoftext|>`, or −1 when there is none.
    /// \return the id, or −1
    std::int32_t end_of_text() const;
    /// \brief The tokenizer as a short text that parse() reads back (ASCII; one item per line).
    /// \return the serialized tokenizer
    virtual std::string serialize() const = 0;

    /// \brief Rebuild a tokenizer from serialize()'s text. The text is untrusted: every line, number
    /// and limit is checked, and any problem is a qkv::Error naming \p source and the line.
    /// \param text the serialized form \param source where it came from, for messages (a path)
    /// \return the tokenizer (never null)
    static std::unique_ptr<Tokenizer> parse(std::string_view text, std::string_view source);
    /// \brief Write serialize() to \p path (atomically, like every file qkv writes).
    /// \param path the file to write
    void save(const std::string& path) const;
    /// \brief Read a tokenizer file written by save() (checked like parse()).
    /// \param path the file \return the tokenizer (never null)
    static std::unique_ptr<Tokenizer> load(const std::string& path);

protected:
    Tokenizer() = default;
    /// \brief Copy (for the value types below). \param other the tokenizer to copy
    Tokenizer(const Tokenizer& other) = default;
    /// \brief Copy-assign. \param other the tokenizer to copy \return *this
    Tokenizer& operator=(const Tokenizer& other) = default;
};

// ---- characters ---------------------------------------------------------------------------------

/// \brief One token per Unicode character; the vocabulary is a list of distinct code points and a
/// token's id is its position there. train() makes it from a text (every distinct character, sorted
/// by code point — the vocabulary data::load_corpus() builds, with the same ids).
class CharTokenizer final : public Tokenizer {
public:
    /// \brief The tokenizer of every distinct character of \p text, sorted by code point. Throws
    /// qkv::Error naming the byte offset when \p text is not valid UTF-8 (a binary file: use BPE,
    /// which reads any bytes), and when it is empty.
    /// \param text UTF-8 text \return the tokenizer
    static CharTokenizer train(std::string_view text);
    /// \brief A tokenizer over \p symbols, in that order. Throws qkv::Error on an empty list, a
    /// repeated character, or a value that is not a Unicode scalar value (above U+10FFFF, or a
    /// surrogate). \param symbols the characters, token i being symbols[i]
    explicit CharTokenizer(std::u32string symbols);

    /// \brief "char". \return "char"
    std::string_view kind() const override { return "char"; }
    /// \brief Number of characters. \return V
    std::int64_t vocab_size() const override { return std::int64_t(symbols_.size()); }
    /// \brief One id per character; throws on invalid UTF-8 or an unknown character, naming it and
    /// its position. \param text UTF-8 text \return the ids
    std::vector<std::int32_t> encode(std::string_view text) const override;
    /// \brief The character, as UTF-8. \param id a token id \return its UTF-8 bytes
    std::string token_bytes(std::int32_t id) const override;
    /// \brief None. \return an empty list
    std::vector<std::pair<std::string, std::int32_t>> specials() const override { return {}; }
    /// \brief "qkv-tokenizer 1", "kind char", "chars N", then one code point per line (decimal).
    /// \return the serialized tokenizer
    std::string serialize() const override;
    /// \brief The characters, in id order. \return the code points
    const std::u32string& symbols() const { return symbols_; }

private:
    std::u32string symbols_;
    std::vector<std::pair<char32_t, std::int32_t>> sorted_;  // (code point, id), sorted: lookup by binary search
};

// ---- byte-level BPE -----------------------------------------------------------------------------

/// One merge rule: the tokens \p left and \p right, adjacent, become one new token.
struct BpeMerge {
    std::int32_t left = 0;   ///< id of the first token
    std::int32_t right = 0;  ///< id of the second token
};

/// \brief Options of BpeTokenizer::train().
struct BpeTrainOptions {
    PreSplit split = PreSplit::gpt2;  ///< how to chunk the text before merging
    /// \brief When no pair of tokens occurs twice any more, stop with fewer merges (true) instead of
    /// throwing qkv::Error (false). Training never merges a pair seen only once: the new token would
    /// describe one spot of the text, not a regularity of it.
    bool stop_early = false;
};

/// \brief Byte-level BPE, as GPT-2 and minbpe: ids 0–255 are the bytes, id 256 + i is merge i
/// (merges()[i]), and after them come the special tokens — here one, `<|endoftext|>`, whose id
/// vocab_size() − 1 no merge can ever produce.
///
/// **Training** (train()): cut the text into chunks (split_gpt2()), start each chunk as its bytes,
/// then repeat: count every adjacent pair of tokens over all chunks; the most frequent pair becomes
/// a new token, replacing its occurrences left to right. A tie between equally frequent pairs goes to
/// the pair that occurs *first* in the text (minbpe's rule: Python's `max` over a dict keeps the
/// first key it met), so training on "aaabdaaabac" with 3 merges encodes that text as
/// [258, 100, 258, 97, 99].
///
/// **Encoding** (encode()): cut into chunks the same way; in each chunk, start from the bytes and
/// apply the learned merges in the order they were learned: repeatedly find the adjacent pair with
/// the earliest merge and replace all its occurrences, until no adjacent pair has a merge.
class BpeTokenizer final : public Tokenizer {
public:
    /// \brief Learn \p vocab_size − 256 merges from \p text (minbpe's convention: the vocabulary
    /// size counts the 256 bytes and the merges; the end-of-text token comes on top, so
    /// vocab_size() is \p vocab_size + 1). Special-token texts in \p text are cut out before
    /// training and never take part in a merge. Throws qkv::Error when \p vocab_size is below 256 or
    /// above kMaxBpeVocab, and — unless options.stop_early — when the text runs out of pairs that
    /// occur at least twice before reaching it (the message names the largest size it supports).
    /// \param text the training text (any bytes)
    /// \param vocab_size 256 + the number of merges to learn
    /// \param options pre-split and stopping rule
    /// \return the trained tokenizer
    static BpeTokenizer train(std::string_view text, std::int64_t vocab_size, const BpeTrainOptions& options = {});
    /// \brief A tokenizer from its merges. Throws qkv::Error when a merge refers to a token that does
    /// not exist yet (merge i may use ids below 256 + i), a pair is merged twice, or there are more
    /// than kMaxBpeVocab − 256 merges.
    ///
    /// \p ids renumbers the tokens for the outside world: token t of the layout above (byte b is
    /// t = b, merge i is t = 256 + i, the end-of-text token is last) is called `ids[t]` by encode(),
    /// decode() and everything else. Empty means no renumbering. GPT-2's files need it: its vocabulary
    /// lists the 256 bytes in the order of its byte-to-character table (`!` is 0), not by value.
    /// Throws qkv::Error unless \p ids is empty or a permutation of [0, vocab_size()).
    /// \param merges the merge rules, in the order learned \param split the pre-split they were learned with
    /// \param ids the outside id of each token (empty: the layout's own)
    BpeTokenizer(std::vector<BpeMerge> merges, PreSplit split, std::vector<std::int32_t> ids = {});

    /// \brief "bpe". \return "bpe"
    std::string_view kind() const override { return "bpe"; }
    /// \brief 256 + merges + 1 (the end-of-text token). \return V
    std::int64_t vocab_size() const override { return std::int64_t(vocab_.size()); }
    /// \brief The ids of ordinary text (any bytes). \param text the text \return the ids
    std::vector<std::int32_t> encode(std::string_view text) const override;
    /// \brief A token's bytes (for a merged token, its two parts' bytes, concatenated).
    /// \param id a token id \return the bytes
    std::string token_bytes(std::int32_t id) const override;
    /// \brief `<|endoftext|>`, the last id. \return one (text, id) pair
    std::vector<std::pair<std::string, std::int32_t>> specials() const override;
    /// \brief "qkv-tokenizer 1", "kind bpe", "split gpt2", "merges M", one "left right" line per
    /// merge, "special <|endoftext|>", and when tokens are renumbered "ids N" and one id per line.
    /// \return the serialized tokenizer
    std::string serialize() const override;
    /// \brief The merge rules, in the order learned (merge i makes token 256 + i), in the layout's own
    /// numbering (before ids()). \return the merges
    const std::vector<BpeMerge>& merges() const { return merges_; }
    /// \brief The pre-split. \return the rule used to chunk text
    PreSplit split() const { return split_; }
    /// \brief The renumbering: ids()[t] is the outside id of token t (empty: none).
    /// \return the ids
    const std::vector<std::int32_t>& ids() const { return ids_; }

private:
    void encode_chunk(std::string_view chunk, std::vector<std::int32_t>& out) const;
    std::int32_t inside(std::int32_t id) const;  // outside id → the layout's (checked)
    std::vector<BpeMerge> merges_;
    PreSplit split_;
    std::vector<std::int32_t> ids_, inside_;  // layout → outside, outside → layout (both empty: identity)
    std::vector<std::string> vocab_;  // bytes of every token, specials included
    std::unordered_map<std::uint64_t, std::int32_t> ranks_;  // (left << 32 | right) → merged token's id
};

}  // namespace qkv::data
