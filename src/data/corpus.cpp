/// \file
/// \brief The character-level corpus: load a text, build its vocabulary, cut random windows.
///
/// A reader learns here the data side of a character-level language model. The vocabulary is
/// every distinct character of the text, sorted by code point (so the ids do not depend on the
/// order the characters first appear in). The first 90% of the text trains the model and the last
/// 10% measures it; splitting by position rather than by random windows keeps the two apart, as
/// overlapping windows would leak validation text into training. A batch is B windows of T
/// characters; the target at every position is simply the next character.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "qkv/data/tasks.hpp"
#include "qkv/error.hpp"
#include "qkv/io/file.hpp"

namespace qkv::data {

Corpus make_corpus(std::string_view text, std::string_view who) {
    if (text.empty()) fail("{}: the text is empty", who);
    const std::u32string chars = decode_utf8(text, who);
    std::u32string symbols = chars;
    std::sort(symbols.begin(), symbols.end());
    symbols.erase(std::unique(symbols.begin(), symbols.end()), symbols.end());

    Corpus corpus;
    corpus.vocab = Vocab(encode_utf8(symbols));
    const std::size_t cut = chars.size() * 9 / 10;  // first 90% train, last 10% validation
    if (cut < 2 || chars.size() - cut < 2)
        fail("{}: a text of {} characters is too short to split 90/10 into two parts of at least 2", who,
             chars.size());
    const std::vector<std::int32_t> ids = corpus.vocab.encode(text);
    corpus.train.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
    corpus.validation.assign(ids.begin() + static_cast<std::ptrdiff_t>(cut), ids.end());
    return corpus;
}

Corpus load_corpus(const std::string& path) {
    const std::string text = io::read_file(path, "load_corpus");
    if (text.empty()) fail("load_corpus: '{}' is empty", path);
    Corpus corpus = make_corpus(text, fmt::format("load_corpus: '{}'", path));
    corpus.path = path;
    return corpus;
}

Batch corpus_batch(const Corpus& corpus, std::int64_t batch_size, std::int64_t context, Split split,
                   Generator& gen) {
    const std::vector<std::int32_t>& ids = split == Split::train ? corpus.train : corpus.validation;
    if (batch_size < 1) fail("corpus_batch: batch size must be >= 1, got {}", batch_size);
    if (context < 1) fail("corpus_batch: context length must be >= 1, got {}", context);
    const auto n = static_cast<std::int64_t>(ids.size());
    if (n < context + 1)
        fail("corpus_batch: the {} part has {} characters, fewer than context + 1 = {}", split_name(split), n,
             context + 1);
    Batch batch{empty({batch_size, context}, i32), empty({batch_size, context}, i32), {}};
    std::int32_t* in = batch.inputs.data<std::int32_t>();
    std::int32_t* tg = batch.targets.data<std::int32_t>();
    for (std::int64_t b = 0; b < batch_size; ++b) {
        // A window [s, s + T] of T + 1 characters: the first T are inputs, the last T targets.
        const auto s = static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(n - context)));
        std::copy_n(ids.begin() + s, context, in + b * context);
        std::copy_n(ids.begin() + s + 1, context, tg + b * context);
    }
    return batch;
}

std::string data_file(std::string_view name) {
    std::vector<std::filesystem::path> dirs;
    if (const char* env = std::getenv("QKV_DATA_DIR"); env != nullptr && *env != '\0') dirs.emplace_back(env);
#ifdef QKV_SOURCE_DATA_DIR
    dirs.emplace_back(QKV_SOURCE_DATA_DIR);  // the source tree this library was built from
#endif
#ifdef QKV_INSTALL_DATA_DIR
    dirs.emplace_back(QKV_INSTALL_DATA_DIR);  // where `cmake --install` puts data/
#endif
    std::string tried;
    for (const auto& dir : dirs) {
        const std::filesystem::path p = dir / name;
        if (std::filesystem::is_regular_file(p)) return p.string();
        tried += fmt::format("{}'{}'", tried.empty() ? "" : ", ", p.string());
    }
    fail("data_file: '{}' not found (looked in: {}); set QKV_DATA_DIR to qkv's data/ directory", name,
         tried.empty() ? "nowhere" : tried);
}

}  // namespace qkv::data
